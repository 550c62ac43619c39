"""contracts/Anchor.sol and its binding edge.contracts.anchor, on a real anvil."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import pytest
import pytest_asyncio
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_typing import ChecksumAddress
from web3 import Web3

from edge.contracts.anchor import (
    ANCHOR_ERRORS,
    ANCHORED_TOPIC,
    DEVICES_CHANGED_TOPIC,
    AnchorRevert,
    DevicesChangedEvent,
    anchor_init_code,
    anchored_root_call,
    batch_checkpoint,
    batch_root,
    decode_address_list,
    decode_anchor_error,
    decode_anchored,
    decode_bool,
    decode_bytes32,
    decode_devices_changed,
    decode_uint,
    devices_call,
    encode_anchor_call,
    encode_anchor_raw,
    encode_set_devices,
    is_device_call,
    pack_auth,
    quorum_call,
    roster_at,
    roster_hash,
    roster_hash_call,
    roster_signatures,
    verify_member_call,
    verify_record_call,
)
from edge.contracts.artifacts import load_artifact
from edge.devnet.anvil import DevChain
from edge.errors import CryptoError, RpcProtocolError
from edge.evidence.eip712 import (
    SECP256K1_N,
    CheckpointMessage,
    Eip712Domain,
    checkpoint_digest,
    domain_separator,
    recover_checkpoint_signer,
    sign_checkpoint,
)
from edge.evidence.merkle import MerkleTree, record_leaf

PRIVATE_CHAIN = 7201
DEVICE_KEYS = [keccak(f"anchor test device {i}".encode()) for i in range(5)]
STRANGER_KEYS = [keccak(f"anchor test stranger {i}".encode()) for i in range(3)]
QUORUM = 3


def _addr(key: bytes) -> str:
    return str(Account.from_key(key).address)


DEVICES = [_addr(k) for k in DEVICE_KEYS]
STRANGERS = [_addr(k) for k in STRANGER_KEYS]


# ---------------------------------------------------------------------------- fixtures


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chain() -> AsyncIterator[DevChain]:
    """One automining anvil (chain id 7401, the 'mainnet' tier) for the module, with
    opcode tracing on (``debug_traceTransaction`` then returns geth-style struct logs)."""
    async with DevChain("mainnet", 7401, 0, extra_args=("--steps-tracing",)) as c:
        yield c


@pytest.fixture(scope="module")
def w3(chain: DevChain) -> Web3:
    web3 = Web3(Web3.HTTPProvider(chain.http_url, request_kwargs={"timeout": 30}))
    web3.eth.default_account = web3.eth.accounts[0]
    return web3


def _send(w3: Web3, to: str | None, data: bytes, *, sender: str | None = None,
          gas: int | None = None) -> Any:
    tx: dict[str, Any] = {"from": sender or w3.eth.accounts[0], "data": data}
    if to is not None:
        tx["to"] = to
    if gas is not None:
        tx["gas"] = gas
    return w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(cast(Any, tx)))


def _account(w3: Web3, i: int) -> str:
    return str(list(w3.eth.accounts)[i])


def _call(w3: Web3, to: str, data: bytes) -> bytes:
    return bytes(w3.eth.call({"to": cast(ChecksumAddress, to), "data": data}))


def _revert(w3: Web3, to: str, data: bytes, sender: str | None = None) -> AnchorRevert:
    """The decoded revert of an eth_call (asserts that it reverts)."""
    answer = w3.provider.make_request(
        cast(Any, "eth_call"),
        [{"from": sender or w3.eth.accounts[0], "to": to, "data": "0x" + data.hex()}, "latest"],
    )
    assert "error" in answer, f"expected a revert, got {answer!r}"
    return decode_anchor_error(answer["error"]["data"])


def _deploy(w3: Web3, devices: Sequence[str] = DEVICES, quorum: int = QUORUM) -> str:
    rc = _send(w3, None, anchor_init_code())
    assert rc["status"] == 1
    address = str(rc["contractAddress"])
    if devices:
        assert _send(w3, address, encode_set_devices(devices, quorum))["status"] == 1
    return address


@pytest.fixture
def anchor(w3: Web3) -> str:
    """A fresh Anchor with the 5 test devices and quorum 3."""
    return _deploy(w3)


def _domain(w3: Web3, address: str) -> Eip712Domain:
    return Eip712Domain(w3.eth.chain_id, address)


def _cp(i: int, root: bytes | None = None) -> CheckpointMessage:
    return CheckpointMessage.create(
        PRIVATE_CHAIN, 100 * i, 100 * i + 99, keccak(f"block {100 * i + 99}".encode()),
        root if root is not None else keccak(f"records root {i}".encode()),
    )


def _sigs(domain: Eip712Domain, cp: CheckpointMessage, keys: Sequence[bytes]) -> list[bytes]:
    return [sign_checkpoint(k, domain, cp) for k in keys]


def _raw_anchor(cp: CheckpointMessage, locator: bytes, pairs: Sequence[tuple[int, bytes]],
                devices: Sequence[str] = DEVICES, quorum: int = QUORUM) -> bytes:
    """anchor() calldata with (device index, signature) pairs exactly as given."""
    return encode_anchor_raw(cp, locator, pack_auth(devices, quorum, pairs))


def _encode(domain: Eip712Domain, cp: CheckpointMessage, sigs: Sequence[bytes], **kw: Any) -> bytes:
    return encode_anchor_call(cp, LOCATOR, sigs, domain=domain, devices=kw.pop("devices", DEVICES),
                              quorum=kw.pop("quorum", QUORUM), **kw)


def _anchored_root(w3: Web3, anchor: str, cid: bytes) -> bytes:
    return decode_bytes32(_call(w3, anchor, anchored_root_call(cid)))


def _word(v: int | str | bytes) -> bytes:
    if isinstance(v, int):
        return v.to_bytes(32, "big")
    if isinstance(v, str):
        return bytes.fromhex(v[2:]).rjust(32, b"\0")
    return v


def _abi_type(inp: dict[str, Any]) -> str:
    t = str(inp["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + t[5:]
    return t


def _abi_signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}(" + ",".join(_abi_type(i) for i in entry["inputs"]) + ")"


LOCATOR = keccak(b"locator: testnet manifest")


# ---------------------------------------------------------------- binding vs. artifact


def test_binding_selectors_and_topics_match_the_artifact_abi() -> None:
    abi = load_artifact("Anchor").abi
    by_name = {e["name"]: e for e in abi if "name" in e}
    fn = by_name["anchor"]
    cp = _cp(1)
    domain = Eip712Domain(1, "0x" + "11" * 20)
    data = _encode(domain, cp, _sigs(domain, cp, DEVICE_KEYS[:1]))
    assert data[:4] == keccak(_abi_signature(fn).encode())[:4] and fn["inputs"] == []
    assert encode_set_devices(DEVICES, 2)[:4] == keccak(
        _abi_signature(by_name["setDevices"]).encode())[:4]
    ev = by_name["Anchored"]
    assert ANCHORED_TOPIC == keccak(_abi_signature(ev).encode())
    assert [i["name"] for i in ev["inputs"] if i["indexed"]] == ["id"]
    assert DEVICES_CHANGED_TOPIC == keccak(_abi_signature(by_name["DevicesChanged"]).encode())
    errors = {keccak(_abi_signature(e).encode())[:4]: e["name"] for e in abi
              if e["type"] == "error"}
    # every error the contract can revert with is known to the binding (and named alike)
    assert all(ANCHOR_ERRORS[sel][0] == name for sel, name in errors.items())


# ------------------------------------------------------------------------- membership


def test_device_set_views_events_and_owner_rules(w3: Web3) -> None:
    owner, other = _account(w3, 0), _account(w3, 1)
    anchor = _deploy(w3, devices=())
    assert decode_uint(_call(w3, anchor, quorum_call())) == 0
    assert decode_address_list(_call(w3, anchor, devices_call())) == ()
    cp = _cp(1)
    sigs = _sigs(_domain(w3, anchor), cp, DEVICE_KEYS[:3])
    assert _revert(w3, anchor, _raw_anchor(cp, LOCATOR, list(enumerate(sigs)))).name == "NoDevices"
    assert decode_bytes32(_call(w3, anchor, roster_hash_call())) == bytes(32)

    rc = _send(w3, anchor, encode_set_devices(DEVICES[:4], 2))
    (log,) = rc["logs"]
    assert bytes(log["topics"][0]) == DEVICES_CHANGED_TOPIC
    assert decode_uint(_call(w3, anchor, quorum_call())) == 2
    assert decode_address_list(_call(w3, anchor, devices_call())) == tuple(DEVICES[:4])
    assert decode_bool(_call(w3, anchor, is_device_call(DEVICES[3]))) is True
    assert decode_bool(_call(w3, anchor, is_device_call(DEVICES[4]))) is False
    assert decode_bytes32(_call(w3, anchor, roster_hash_call())) == roster_hash(DEVICES[:4], 2)
    assert decode_devices_changed(log) == DevicesChangedEvent(
        tuple(DEVICES[:4]), 2, rc["blockNumber"], log["logIndex"])

    # a replacement drops the old members
    _send(w3, anchor, encode_set_devices([DEVICES[4], DEVICES[0]], 1))
    assert decode_address_list(_call(w3, anchor, devices_call())) == (DEVICES[4], DEVICES[0])
    assert [decode_bool(_call(w3, anchor, is_device_call(d))) for d in DEVICES] == [
        True, False, False, False, True]

    # only the owner; the contract's own checks (bypassing the binding's)
    sel = keccak(b"setDevices(address[],uint8)")[:4]

    def raw(devs: list[str], q: int) -> bytes:
        return sel + abi_encode(["address[]", "uint8"], [devs, q])

    err = _revert(w3, anchor, encode_set_devices(DEVICES, 3), sender=other)
    assert err == AnchorRevert("OwnableUnauthorizedAccount", (other,))
    assert _revert(w3, anchor, raw(DEVICES, 0)) == AnchorRevert("BadQuorum", (5, 0))
    assert _revert(w3, anchor, raw(DEVICES[:2], 3)) == AnchorRevert("BadQuorum", (2, 3))
    assert _revert(w3, anchor, raw([], 1)) == AnchorRevert("BadQuorum", (0, 1))
    assert _revert(w3, anchor, raw([DEVICES[0], DEVICES[1], DEVICES[0]], 2)) == AnchorRevert(
        "BadDevice", (DEVICES[0],))
    zero = "0x" + "00" * 20
    assert _revert(w3, anchor, raw([DEVICES[0], zero], 1)) == AnchorRevert("BadDevice", (zero,))

    # ownership moves with transferOwnership; renouncing is disabled
    contract = w3.eth.contract(address=cast(ChecksumAddress, anchor),
                               abi=load_artifact("Anchor").abi)
    w3.eth.wait_for_transaction_receipt(contract.functions.transferOwnership(other).transact())
    assert contract.functions.owner().call() == other
    assert _revert(w3, anchor, encode_set_devices(DEVICES, 3), sender=owner).name == (
        "OwnableUnauthorizedAccount")
    assert _send(w3, anchor, encode_set_devices(DEVICES, 3), sender=other)["status"] == 1
    sel_renounce = keccak(b"renounceOwnership()")[:4]
    assert _revert(w3, anchor, sel_renounce, sender=other).name == "RenounceDisabled"


def test_encode_set_devices_rejects_bad_input() -> None:
    with pytest.raises(CryptoError, match="quorum 0"):
        encode_set_devices(DEVICES, 0)
    with pytest.raises(CryptoError, match="quorum 6"):
        encode_set_devices(DEVICES, 6)
    with pytest.raises(CryptoError, match="repeated"):
        encode_set_devices([DEVICES[0], DEVICES[0].lower()], 1)
    with pytest.raises(CryptoError, match="zero address"):
        encode_set_devices(["0x" + "00" * 20], 1)
    with pytest.raises(CryptoError, match=r"devices\[1\]"):
        encode_set_devices([DEVICES[0], "0x1234"], 1)
    bad_checksum = DEVICES[0][:2] + DEVICES[0][2:].swapcase()
    if bad_checksum[2:] not in (bad_checksum[2:].lower(), bad_checksum[2:].upper()):
        with pytest.raises(CryptoError, match="checksum"):
            encode_set_devices([bad_checksum], 1)
    with pytest.raises(CryptoError, match="1..255"):
        encode_set_devices([], 1)


# -------------------------------------------------------------------------- anchoring


def test_anchor_with_quorum_emits_event_that_decodes(w3: Web3, anchor: str) -> None:
    submitter = _account(w3, 5)  # anyone may submit: not a device, not the owner
    domain = _domain(w3, anchor)
    cp = _cp(7)
    sigs = _sigs(domain, cp, [DEVICE_KEYS[4], DEVICE_KEYS[0], DEVICE_KEYS[2]])
    assert _anchored_root(w3, anchor, cp.id) == bytes(32)
    rc = _send(w3, anchor, _encode(domain, cp, sigs), sender=submitter)
    assert rc["status"] == 1
    assert _anchored_root(w3, anchor, cp.id) == cp.root

    (log,) = rc["logs"]
    ev = decode_anchored(log, DEVICES)
    assert (ev.id, ev.chain_id, ev.from_block, ev.to_block) == (cp.id, cp.chain_id, cp.from_block, cp.to_block)
    assert ev.locator == LOCATOR and ev.signer_bits == 0b10101
    assert ev.signers == (DEVICES[0], DEVICES[2], DEVICES[4])  # by roster index
    assert ev.root is None and ev.submitter is None  # not in the log: storage, transaction
    assert ev.address == anchor and ev.block_number == rc["blockNumber"]
    assert ev.transaction_hash == bytes(rc["transactionHash"]) and not ev.removed
    with pytest.raises(CryptoError, match="not known"):
        ev.checkpoint()

    # web3's own ABI decoding of the same log agrees (independent decoder)
    contract = w3.eth.contract(address=cast(ChecksumAddress, anchor),
                               abi=load_artifact("Anchor").abi)
    (w3ev,) = contract.events.Anchored().process_receipt(rc)
    assert w3ev.args.id == ev.id and w3ev.args.locator == ev.locator
    assert w3ev.args.span == cp.chain_id << 128 | cp.from_block << 64 | cp.to_block
    assert w3ev.args.signers == ev.signer_bits

    # the raw JSON-RPC form (hex strings) from eth_getLogs decodes the same
    answer = w3.provider.make_request(cast(Any, "eth_getLogs"), [{
        "address": anchor, "fromBlock": "0x0", "toBlock": "latest",
        "topics": ["0x" + ANCHORED_TOPIC.hex(), "0x" + cp.id.hex()]}])
    (raw_log,) = answer["result"]
    assert isinstance(raw_log["data"], str)
    assert decode_anchored(raw_log, DEVICES) == ev
    # the roster in force comes from the DevicesChanged logs
    changes = [decode_devices_changed(lg) for lg in w3.provider.make_request(cast(Any, "eth_getLogs"), [{
        "address": anchor, "fromBlock": "0x0", "toBlock": "latest",
        "topics": ["0x" + DEVICES_CHANGED_TOPIC.hex()]}])["result"]]
    assert roster_at(changes, ev.block_number or 0, ev.log_index or 0) == tuple(DEVICES)


async def test_fetch_anchored_fills_root_signers_and_submitter(w3: Web3, anchor: str, chain: DevChain) -> None:
    from edge.contracts.anchor_events import fetch_anchored
    from edge.rpc.http import HttpRpc

    domain = _domain(w3, anchor)
    cp = _cp(17)
    submitter = _account(w3, 4)
    assert _send(w3, anchor, _encode(domain, cp, _sigs(domain, cp, DEVICE_KEYS[1:4])), sender=submitter)["status"] == 1
    # the device set changes afterwards: the old anchor keeps the roster of its time
    assert _send(w3, anchor, encode_set_devices([DEVICES[4], DEVICES[3]], 1))["status"] == 1
    async with HttpRpc(chain.http_url) as rpc:
        (ev,) = await fetch_anchored(rpc, bytes.fromhex(anchor[2:]))
    assert ev.root == cp.root and ev.submitter == submitter
    assert ev.signers == tuple(DEVICES[1:4])


def test_limit_sends_exactly_quorum_signatures_of_the_first_devices(
    w3: Web3, anchor: str
) -> None:
    domain = _domain(w3, anchor)
    cp = _cp(13)
    all_five = _sigs(domain, cp, DEVICE_KEYS)
    rc = _send(w3, anchor, _encode(domain, cp, all_five[::-1], limit=QUORUM))
    assert rc["status"] == 1
    assert decode_anchored(rc["logs"][0], DEVICES).signers == tuple(DEVICES[:QUORUM])
    # more than the quorum is accepted too (every one is checked)
    cp2 = _cp(14)
    rc = _send(w3, anchor, _encode(domain, cp2, _sigs(domain, cp2, DEVICE_KEYS)))
    assert rc["status"] == 1 and len(decode_anchored(rc["logs"][0], DEVICES).signers) == 5
    with pytest.raises(CryptoError, match="limit"):
        _encode(domain, cp, all_five, limit=0)


def test_duplicate_anchor_reverts_cheaply(w3: Web3, anchor: str) -> None:
    domain = _domain(w3, anchor)
    cp = _cp(3)
    first = _send(w3, anchor, _encode(domain, cp, _sigs(domain, cp, DEVICE_KEYS[:3])))
    assert first["status"] == 1

    # another quorum, another locator, another submitter: still the same id -> rejected
    dup = encode_anchor_call(cp, keccak(b"other locator"), _sigs(domain, cp, DEVICE_KEYS[2:]),
                             domain=domain, devices=DEVICES, quorum=QUORUM)
    assert _revert(w3, anchor, dup) == AnchorRevert("AlreadyAnchored", (cp.id,))
    rc = _send(w3, anchor, dup, sender=_account(w3, 3), gas=300_000)
    assert rc["status"] == 0
    assert rc["logs"] == []
    assert _anchored_root(w3, anchor, cp.id) == cp.root

    # execution gas of the failed duplicate (intrinsic and calldata gas excluded): it
    # stops before any signature work (one ecrecover alone costs 3,000 gas)
    tx_hash = "0x" + bytes(rc["transactionHash"]).hex()
    traces = w3.provider.make_request(cast(Any, "trace_transaction"), [tx_hash])["result"]
    top = next(t for t in traces if t["traceAddress"] == [])
    assert top["subtraces"] == 0, traces  # no call out, in particular no ecrecover
    assert top["error"] == "Reverted"
    execution = int(top["result"]["gasUsed"], 16)
    assert 2_100 < execution < 3_600, execution  # one cold SLOAD (2,100), dispatch, revert
    steps = w3.provider.make_request(
        cast(Any, "debug_traceTransaction"), [tx_hash, {"disableStorage": True}]
    )["result"]["structLogs"]
    assert steps and steps[-1]["op"] == "REVERT"
    assert [s["op"] for s in steps].count("SLOAD") == 1
    assert not any(s["op"] == "STATICCALL" for s in steps)  # no ecrecover precompile call
    assert rc["gasUsed"] < first["gasUsed"] * 3 // 5, (rc["gasUsed"], first["gasUsed"])


def test_fewer_than_quorum_signatures_revert(w3: Web3, anchor: str) -> None:
    domain = _domain(w3, anchor)
    cp = _cp(4)
    assert _revert(w3, anchor, _encode(domain, cp, _sigs(domain, cp, DEVICE_KEYS[:2]))) == AnchorRevert(
        "QuorumNotMet", (2, 3))
    assert _revert(w3, anchor, _raw_anchor(cp, LOCATOR, [])) == AnchorRevert("QuorumNotMet", (0, 3))
    # duplicates of one device do not count twice: the binding keeps one per signer,
    # and a bitmap cannot name a device twice
    doubled = _sigs(domain, cp, [DEVICE_KEYS[0], DEVICE_KEYS[1], DEVICE_KEYS[0]])
    assert _revert(w3, anchor, _encode(domain, cp, doubled)) == AnchorRevert("QuorumNotMet", (2, 3))
    with pytest.raises(CryptoError, match="repeated"):
        pack_auth(DEVICES, QUORUM, [(0, doubled[0]), (0, doubled[0])])
    assert _anchored_root(w3, anchor, cp.id) == bytes(32)


def test_non_device_or_misplaced_signer_reverts_roster_mismatch(w3: Web3, anchor: str) -> None:
    domain = _domain(w3, anchor)
    cp = _cp(5)
    good = _sigs(domain, cp, DEVICE_KEYS[:3])
    stranger = _sigs(domain, cp, STRANGER_KEYS[:1])[0]
    registered = roster_hash(DEVICES, QUORUM)
    # a stranger's signature in device 2's place: the rebuilt roster is not the registered one
    err = _revert(w3, anchor, _raw_anchor(cp, LOCATOR, [(0, good[0]), (1, good[1]), (2, stranger)]))
    assert err.name == "RosterMismatch" and err.args[1] == registered
    rebuilt = DEVICES[:2] + [STRANGERS[0]] + DEVICES[3:]
    assert err.args[0] == roster_hash(rebuilt, QUORUM)
    # a device's signature in another device's place
    assert _revert(w3, anchor, _raw_anchor(cp, LOCATOR, [(0, good[1]), (1, good[0]), (2, good[2])])).name == (
        "RosterMismatch")
    # a roster other than the registered one (another order, another quorum)
    assert _revert(w3, anchor, _raw_anchor(cp, LOCATOR, [(0, good[1]), (1, good[0]), (2, good[2])],
                                           devices=[DEVICES[1], DEVICES[0], *DEVICES[2:]])).name == "RosterMismatch"
    assert _revert(w3, anchor, _raw_anchor(cp, LOCATOR, list(enumerate(good)), quorum=2)).name == "RosterMismatch"
    # the binding drops strangers (then the quorum is short) and sorts by roster index
    mixed = [good[2], stranger, good[0]]
    assert _revert(w3, anchor, _encode(domain, cp, mixed)) == AnchorRevert("QuorumNotMet", (2, 3))
    assert [i for i, _ in roster_signatures(domain, cp, mixed, DEVICES)] == [0, 2]
    # bad shapes: a signer bit beyond the roster, a length that does not match the bitmap
    ok = _raw_anchor(cp, LOCATOR, list(enumerate(good)))
    assert _revert(w3, anchor, ok[:-1]) == AnchorRevert("BadAuth", (len(ok) - 1,))
    assert _revert(w3, anchor, ok + b"\0") == AnchorRevert("BadAuth", (len(ok) + 1,))
    assert _revert(w3, anchor, ok[:100]) == AnchorRevert("BadAuth", (100,))
    beyond = bytearray(ok)
    beyond[126] |= 0x80  # bit 7 of a 5-device roster
    assert _revert(w3, anchor, bytes(beyond)).name == "BadAuth"
    assert _send(w3, anchor, ok)["status"] == 1


def test_malleable_and_malformed_signatures_revert_as_openzeppelin(
    w3: Web3, anchor: str
) -> None:
    domain = _domain(w3, anchor)
    cp = _cp(8)
    sigs = _sigs(domain, cp, DEVICE_KEYS[:3])
    good = sigs[0]
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    # the other valid ECDSA signature of the same signer: (r, n - s, v ^ 1), high s
    high_s = (SECP256K1_N - s).to_bytes(32, "big")
    malleable = r + high_s + bytes([55 - v])
    assert _revert(w3, anchor, _raw_anchor(cp, LOCATOR, [(0, malleable), (1, sigs[1]), (2, sigs[2])])) == (
        AnchorRevert("ECDSAInvalidSignatureS", (high_s,)))
    for bad_v in (0, 1, 29):
        bad = good[:64] + bytes([bad_v])
        assert _revert(w3, anchor, _raw_anchor(cp, LOCATOR, [(0, bad), (1, sigs[1]), (2, sigs[2])])) == (
            AnchorRevert("ECDSAInvalidSignature", ()))
    # the binding refuses them before any gas is spent, naming the signature
    with pytest.raises(CryptoError, match="signature 1: .*InvalidSignatureS"):
        _encode(domain, cp, [sigs[1], malleable])
    with pytest.raises(CryptoError, match="signature 0: .*v = 1"):
        _encode(domain, cp, [good[:64] + b"\x01"])
    with pytest.raises(CryptoError, match="65 bytes"):
        pack_auth(DEVICES, QUORUM, [(0, good[:64])])
    assert _anchored_root(w3, anchor, cp.id) == bytes(32)


def test_bad_range_and_zero_root_revert(w3: Web3, anchor: str) -> None:
    domain = _domain(w3, anchor)
    cp = _cp(9)
    sigs = list(enumerate(_sigs(domain, cp, DEVICE_KEYS[:3])))
    forged = CheckpointMessage(keccak(b"not the id"), cp.chain_id, cp.from_block, cp.to_block,
                               cp.last_block_hash, cp.root)
    with pytest.raises(CryptoError, match="does not match"):
        _encode(domain, forged, [s for _, s in sigs])

    def fields(frm: int, to: int, root: bytes) -> CheckpointMessage:
        return CheckpointMessage(keccak(abi_encode(["uint256", "uint64", "uint64", "bytes32", "bytes32"],
                                                   [PRIVATE_CHAIN, frm, to, cp.last_block_hash, root])),
                                 PRIVATE_CHAIN, frm, frm, cp.last_block_hash, root)

    backwards = fields(500, 400, cp.root)
    backwards_call = bytearray(_raw_anchor(backwards, LOCATOR, sigs))
    backwards_call[20:28] = (400).to_bytes(8, "big")  # toBlock below fromBlock
    assert _revert(w3, anchor, bytes(backwards_call)) == AnchorRevert("BadRange", (500, 400))
    empty = CheckpointMessage.create(PRIVATE_CHAIN, 100, 199, cp.last_block_hash, bytes(32))
    assert _revert(w3, anchor, _raw_anchor(empty, LOCATOR, sigs)) == AnchorRevert("EmptyRoot", (empty.id,))
    with pytest.raises(CryptoError, match="EmptyRoot"):
        _encode(domain, empty, _sigs(domain, empty, DEVICE_KEYS[:3]))


def test_other_root_by_strangers_or_minority_is_never_anchored(w3: Web3, anchor: str) -> None:
    domain = _domain(w3, anchor)
    honest = _cp(10)
    forged = _cp(10, root=keccak(b"a root the devices never computed"))
    assert forged.id != honest.id
    strangers = _raw_anchor(forged, LOCATOR, list(enumerate(_sigs(domain, forged, STRANGER_KEYS))))
    assert _revert(w3, anchor, strangers).name == "RosterMismatch"
    with pytest.raises(CryptoError, match="no usable signature"):
        _encode(domain, forged, _sigs(domain, forged, STRANGER_KEYS))
    # one byzantine device plus strangers: filtered to devices, below quorum
    mixed = _sigs(domain, forged, [DEVICE_KEYS[1], *STRANGER_KEYS])
    assert _revert(w3, anchor, _encode(domain, forged, mixed)) == AnchorRevert("QuorumNotMet", (1, 3))
    rc = _send(w3, anchor, _encode(domain, honest, _sigs(domain, honest, DEVICE_KEYS[2:])))
    assert rc["status"] == 1
    assert _anchored_root(w3, anchor, honest.id) == honest.root
    assert _anchored_root(w3, anchor, forged.id) == bytes(32)


def test_domain_binds_chain_id_and_contract(w3: Web3, anchor: str) -> None:
    other = _deploy(w3)  # same devices, same quorum, another address
    domain, other_domain = _domain(w3, anchor), _domain(w3, other)
    cp = _cp(11)
    # the on-chain digest and separator are the Python ones
    contract = w3.eth.contract(address=cast(ChecksumAddress, anchor),
                               abi=load_artifact("Anchor").abi)
    fields = (cp.id, cp.chain_id, cp.from_block, cp.to_block, cp.last_block_hash, cp.root)
    assert contract.functions.domainSeparator().call() == domain_separator(domain)
    assert contract.functions.checkpointDigest(fields).call() == checkpoint_digest(domain, cp)

    # signatures for another contract or chain recover to other addresses: the rebuilt
    # roster is not the registered one
    for dom in (other_domain, Eip712Domain(w3.eth.chain_id + 1, anchor)):
        pairs = list(enumerate(_sigs(dom, cp, DEVICE_KEYS[:3])))
        err = _revert(w3, anchor, _raw_anchor(cp, LOCATOR, pairs))
        assert err.name == "RosterMismatch"
        assert recover_checkpoint_signer(domain, cp, pairs[0][1]) not in DEVICES
    # the right domain works on each contract
    for addr, dom in ((anchor, domain), (other, other_domain)):
        assert _send(w3, addr, _encode(dom, cp, _sigs(dom, cp, DEVICE_KEYS[:3])))["status"] == 1


# ----------------------------------------------------------------- batching, auditing


def test_batch_of_8_members_verify_on_chain(w3: Web3, anchor: str) -> None:
    domain = _domain(w3, anchor)
    members = [_cp(20 + i) for i in range(8)]
    batch = batch_checkpoint(members)
    ids = [m.id for m in members]
    assert batch.root == batch_root(ids) == MerkleTree(ids).root
    assert (batch.chain_id, batch.from_block, batch.to_block, batch.last_block_hash) == (
        PRIVATE_CHAIN, members[0].from_block, members[-1].to_block, members[-1].last_block_hash)
    assert batch.id_matches()
    rc = _send(w3, anchor, _encode(domain, batch, _sigs(domain, batch, DEVICE_KEYS[1:4])))
    assert rc["status"] == 1
    assert decode_anchored(rc["logs"][0]).id == batch.id
    assert _anchored_root(w3, anchor, batch.id) == batch.root

    tree = MerkleTree(ids)

    def verify(aid: bytes, mid: bytes, proof: list[bytes]) -> bool:
        return decode_bool(_call(w3, anchor, verify_member_call(aid, mid, proof)))

    for i, mid in enumerate(ids):
        assert verify(batch.id, mid, tree.proof(i)) is True
    outsider = _cp(99).id
    assert verify(batch.id, outsider, tree.proof(0)) is False
    assert verify(batch.id, ids[0], tree.proof(1)) is False  # a proof of another member
    assert verify(batch.id, ids[0], tree.proof(0)[:-1]) is False  # truncated proof
    assert verify(keccak(b"not anchored"), ids[0], tree.proof(0)) is False
    # a member is not anchored on its own
    assert _anchored_root(w3, anchor, ids[0]) == bytes(32)


def test_verify_record_against_a_single_checkpoint(w3: Web3, anchor: str) -> None:
    domain = _domain(w3, anchor)
    records = [abi_encode(["uint256", "uint64", "uint64", "uint64", "bytes32"],
                          [PRIVATE_CHAIN, 1200 + i // 2, i % 2, i, keccak(bytes([i]))])
               for i in range(5)]
    leaves = [record_leaf(r) for r in records]
    tree = MerkleTree(leaves)
    cp = _cp(12, root=tree.root)
    assert _send(w3, anchor, _encode(domain, cp, _sigs(domain, cp, DEVICE_KEYS[:3])))["status"] == 1

    def check(leaf: bytes, proof: list[bytes]) -> bool:
        return decode_bool(_call(w3, anchor, verify_record_call(cp.id, leaf, proof)))

    for i, leaf in enumerate(leaves):
        assert check(leaf, tree.proof(i)) is True
    tampered = record_leaf(records[2][:-1] + b"\x01")
    assert check(tampered, tree.proof(2)) is False


def test_batch_inputs_are_checked() -> None:
    a, b = _cp(1), _cp(2)
    with pytest.raises(CryptoError, match="at least one"):
        batch_checkpoint([])
    with pytest.raises(CryptoError, match="member 1 starts"):
        batch_checkpoint([b, a])
    with pytest.raises(CryptoError, match="member 1 starts"):
        batch_checkpoint([a, a])
    other_chain = CheckpointMessage.create(PRIVATE_CHAIN + 1, 300, 399, bytes(32), b"\x01" * 32)
    with pytest.raises(CryptoError, match="chain"):
        batch_checkpoint([a, other_chain])
    forged = CheckpointMessage(keccak(b"x"), 1, 0, 9, bytes(32), b"\x02" * 32)
    with pytest.raises(CryptoError, match="member 1 id"):
        batch_checkpoint([a, forged])
    with pytest.raises(CryptoError, match="repeated"):
        batch_root([a.id, a.id])
    with pytest.raises(CryptoError, match="member id 1"):
        batch_root([a.id, b"short"])
    assert batch_root([a.id]) == a.id  # K = 1 commits to the id itself


# ------------------------------------------------------------------ malformed answers


def _log_of(cp: CheckpointMessage) -> dict[str, Any]:
    data = abi_encode(["uint256", "bytes32", "uint256"],
                      [cp.chain_id << 128 | cp.from_block << 64 | cp.to_block, LOCATOR, 0b11])
    return {"topics": ["0x" + ANCHORED_TOPIC.hex(), "0x" + cp.id.hex()], "data": "0x" + data.hex()}


def test_decode_anchored_rejects_malformed_logs() -> None:
    cp = _cp(1)
    good = _log_of(cp)
    ev = decode_anchored(good, DEVICES)
    assert (ev.id, ev.chain_id, ev.from_block, ev.to_block) == (cp.id, cp.chain_id, cp.from_block, cp.to_block)
    assert ev.signers == tuple(DEVICES[:2]) and decode_anchored(good).signers == ()
    assert ev.block_number is None and ev.address is None

    def bad(match: str, roster: Sequence[str] | None = None, **changes: Any) -> None:
        with pytest.raises(RpcProtocolError, match=match):
            decode_anchored({**good, **changes}, roster)

    bad("not Anchored", topics=["0x" + keccak(b"Other()").hex(), *good["topics"][1:]])
    bad("2 topics", topics=good["topics"][:1])
    bad(r"topics\[1\]", topics=[good["topics"][0], "0xzz"])
    bad("above its uint64", data="0x01" + good["data"][4:])
    bad("fromBlock", data="0x" + abi_encode(["uint256", "bytes32", "uint256"],
                                            [1 << 128 | 9 << 64 | 8, LOCATOR, 1]).hex())
    bad("log.data", data=good["data"][:-64])
    bad("canonical", data=good["data"] + "00" * 32)
    bad("beyond the 1-device roster", roster=DEVICES[:1])
    bad("log.blockNumber", blockNumber="twelve")
    bad("log.address", address="0x1234")
    bad("log.removed", removed="no")
    with pytest.raises(RpcProtocolError, match="topics: missing"):
        decode_anchored({"data": good["data"]})
    with pytest.raises(RpcProtocolError, match="expected an object"):
        decode_anchored(cast(Any, ["not", "a", "log"]))
    with pytest.raises(RpcProtocolError, match="no device set"):
        roster_at([DevicesChangedEvent(tuple(DEVICES), 3, 10, 0)], 10, 0)


def test_decode_helpers_reject_malformed_results() -> None:
    assert decode_bytes32("0x" + "ab" * 32) == b"\xab" * 32
    with pytest.raises(RpcProtocolError, match="32 bytes"):
        decode_bytes32("0x" + "ab" * 31)
    with pytest.raises(RpcProtocolError, match="bool"):
        decode_bool(_word(2))
    with pytest.raises(RpcProtocolError, match="hex"):
        decode_uint("12")
    with pytest.raises(RpcProtocolError, match="not an error of the Anchor"):
        decode_anchor_error("0xdeadbeef")
    with pytest.raises(RpcProtocolError, match="revert QuorumNotMet"):
        decode_anchor_error(keccak(b"QuorumNotMet(uint256,uint256)")[:4] + _word(1))
    err = decode_anchor_error(
        keccak(b"Error(string)")[:4] + abi_encode(["string"], ["no"]))
    assert err == AnchorRevert("Error", ("no",))
    with pytest.raises(CryptoError, match="locator"):
        cp = _cp(1)
        dom = Eip712Domain(1, "0x" + "11" * 20)
        encode_anchor_call(cp, b"short", _sigs(dom, cp, DEVICE_KEYS[:1]), domain=dom, devices=DEVICES,
                           quorum=QUORUM)
    with pytest.raises(CryptoError, match="no usable signature"):
        _encode(Eip712Domain(1, "0x" + "11" * 20), _cp(1), [])
    with pytest.raises(CryptoError, match="repeated"):
        roster_hash([DEVICES[0], DEVICES[0]], 1)
    with pytest.raises(CryptoError, match="quorum"):
        roster_hash(DEVICES, 6)
