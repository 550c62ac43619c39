"""Tests of edge.chain.poa against real sealed PoA headers and a real anvil node.

Fixtures: ``../shared/data/poa_headers/*.json`` (relative to the repo root): Clique
(EIP-225) headers of Goerli/Rinkeby and AuRa headers of Kovan/Gnosis/Tobalaba, each with
its signer, seal hash and block hash. The dev-chain case uses a real anvil.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_utils.address import to_checksum_address

from edge.chain.poa import (
    SealChecker,
    SealResult,
    aura_seal_hash,
    aura_signer,
    block_hash,
    clique_seal_hash,
    clique_signer,
    detect_engine,
)
from edge.errors import ConfigError, SealError

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "poa_headers"
Record = dict[str, Any]


def _load(name: str) -> list[Record]:
    path = DATA / name
    if not path.is_file():
        return []
    records: list[Record] = json.loads(path.read_text())
    return records


CLIQUE = _load("clique.json") + _load("clique_unverified_hash.json")
AURA = _load("aura.json") + _load("aura_unverified_hash.json")
NO_DATA = pytest.mark.skipif(
    not CLIQUE or not AURA, reason=f"PoA header fixtures not found in {DATA}"
)


def _rid(rec: Record) -> str:
    return f"{rec['network']}-{int(rec['number'], 16)}"


def _params(records: list[Record]) -> list[Any]:
    return [pytest.param(r, id=_rid(r)) for r in records] or [
        pytest.param(None, marks=pytest.mark.skip(reason=f"no PoA fixtures in {DATA}"))
    ]


def _pick(records: list[Record], network: str, number: int) -> Record:
    for rec in records:
        if rec["network"] == network and int(rec["number"], 16) == number:
            return dict(rec)
    pytest.skip(f"fixture {network} {number} not found in {DATA}")


def _flip(hexstr: str, byte_index: int) -> str:
    """Flip the low bit of one byte of a 0x-hex string."""
    data = bytearray(bytes.fromhex(hexstr[2:]))
    data[byte_index] ^= 0x01
    return "0x" + data.hex()


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


# ------------------------------------------------------------------ real fixtures


def test_fixture_counts() -> None:
    if not DATA.is_dir():
        pytest.skip(f"PoA header fixtures not found in {DATA}")
    # README: 20 + 13 Clique records, 13 + 2 AuRa records.
    assert (len(CLIQUE), len(AURA)) == (33, 15)


@pytest.mark.parametrize("rec", _params(CLIQUE))
def test_clique_record(rec: Record) -> None:
    assert detect_engine(rec) == "clique"
    signer = clique_signer(rec)
    assert signer == to_checksum_address(rec["signer"])  # EIP-55 form
    assert _hex(clique_seal_hash(rec)) == rec["seal_hash"]
    assert _hex(block_hash(rec)) == rec["hash"]
    if "stated_seal_hash" in rec:
        assert _hex(clique_seal_hash(rec)) == rec["stated_seal_hash"]


@pytest.mark.parametrize("rec", _params(AURA))
def test_aura_record(rec: Record) -> None:
    assert detect_engine(rec) == "aura"
    signer = aura_signer(rec)
    assert signer == to_checksum_address(rec["signer"])
    assert signer.lower() == rec["miner"]  # a valid AuRa block is signed by its author
    assert _hex(aura_seal_hash(rec)) == rec["seal_hash"]
    assert _hex(block_hash(rec)) == rec["hash"]
    result = SealChecker("aura").check(rec)
    assert (result.engine, result.signer, result.authorized) == ("aura", signer, None)


@pytest.mark.parametrize("rec", _params(AURA))
def test_aura_seal_fields_form(rec: Record) -> None:
    """OpenEthereum's sealFields = [rlp(step), rlp(signature)] gives the same answers."""
    step = int(rec["step"], 16)
    sig = bytes.fromhex(rec["signature"][2:])
    sealed = {k: v for k, v in rec.items() if k not in ("step", "signature")}
    sealed["sealFields"] = [_hex(rlp.encode(step)), _hex(rlp.encode(sig))]
    assert detect_engine(sealed) == "aura"
    assert aura_signer(sealed) == to_checksum_address(rec["signer"])
    assert _hex(block_hash(sealed)) == rec["hash"]
    # OpenEthereum also states the step in decimal next to sealFields.
    both = dict(sealed, step=str(step), signature=rec["signature"])
    assert _hex(block_hash(both)) == rec["hash"]
    with pytest.raises(SealError, match="disagrees"):
        block_hash(dict(sealed, step=str(step + 1)))


@pytest.mark.parametrize("rec", _params([r for r in CLIQUE if "authorities" in r]))
def test_clique_in_turn_matches_records(rec: Record) -> None:
    result = SealChecker("clique", rec["authorities"]).check(rec)
    assert result.authorized is True
    assert result.in_turn is rec["in_turn"]
    assert result.in_turn is (rec["signer"] == rec["in_turn_signer"])
    assert result.number == int(rec["number"], 16)
    assert "difficulty" not in result.reason  # difficulty agrees with the turn


@pytest.mark.parametrize("rec", _params([r for r in AURA if "validators" in r]))
def test_aura_in_turn_matches_records(rec: Record) -> None:
    result = SealChecker("aura", rec["validators"]).check(rec)
    assert result.authorized is True
    assert result.in_turn is rec["expected_primary_matches"]
    # Rotating the validator order moves the primary away from the signer.
    rotated = rec["validators"][1:] + rec["validators"][:1]
    other = SealChecker("aura", rotated).check(rec)
    assert (other.authorized, other.in_turn) == (True, False)


@NO_DATA
def test_clique_out_of_turn() -> None:
    # Rinkeby 1: 3 authorities, sorted[1 % 3] is the signer (difficulty 2). Adding
    # 0x00..01 (sorts first) makes sorted[1 % 4] = 0x42eb.., so the signer is out of turn
    # while the header claims in-turn difficulty.
    rec = _pick(CLIQUE, "rinkeby", 1)
    low = "0x" + "00" * 19 + "01"
    result = SealChecker("clique", [*rec["authorities"], low]).check(rec)
    assert (result.authorized, result.in_turn) == (True, False)
    assert "difficulty is 2" in result.reason
    # Goerli 1000000 (difficulty 1, out of turn): with [signer, 0x00..01] the block
    # number is even so 0x00..01 is in turn: consistent with difficulty 1.
    rec = _pick(CLIQUE, "goerli", 1000000)
    result = SealChecker("clique", [rec["signer"].upper().replace("0X", "0x"), low]).check(rec)
    assert (result.authorized, result.in_turn) == (True, False)
    assert "difficulty" not in result.reason


@NO_DATA
def test_stranger_is_not_authorized() -> None:
    goerli = _pick(CLIQUE, "goerli", 1)
    rinkeby = _pick(CLIQUE, "rinkeby", 1)
    result = SealChecker("auto", rinkeby["authorities"]).check(goerli)
    assert (result.engine, result.authorized, result.in_turn) == ("clique", False, False)
    assert result.signer is not None and result.signer in result.reason
    kovan = [r for r in AURA if "validators" in r][0]
    gnosis = _pick(AURA, "gnosis", 1)
    result = SealChecker("aura", kovan["validators"]).check(gnosis)
    assert (result.authorized, result.in_turn) == (False, False)


# ------------------------------------------------------------------ tampering


@NO_DATA
@pytest.mark.parametrize(
    "field, index",
    [("extraData", 3), ("extraData", 40), ("gasUsed", None), ("stateRoot", 0)],
    ids=["vanity", "seal-r", "gasUsed", "stateRoot"],
)
def test_clique_tampered_header_changes_signer(field: str, index: int | None) -> None:
    rec = _pick(CLIQUE, "rinkeby", 2)
    tampered = dict(rec)
    if index is None:
        tampered[field] = hex(int(rec[field], 16) + 1)
    else:
        tampered[field] = _flip(rec[field], index)
    checker = SealChecker("clique", rec["authorities"])
    try:
        result = checker.check(tampered)
    except SealError as exc:  # a tampered r may leave no recoverable key
        assert "block 2" in str(exc)
        return
    assert result.signer != to_checksum_address(rec["signer"])
    assert result.authorized is False


@NO_DATA
def test_clique_malformed_seal_raises() -> None:
    rec = _pick(CLIQUE, "goerli", 3)
    extra = bytes.fromhex(rec["extraData"][2:])
    bad_v = dict(rec, extraData=_hex(extra[:-1] + bytes([27])))
    with pytest.raises(SealError, match=r"block 3: .*v=27"):
        clique_signer(bad_v)
    zero_r = dict(rec, extraData=_hex(extra[:-65] + bytes(32) + extra[-33:]))
    with pytest.raises(SealError, match=r"block 3: .*not a valid secp256k1 signature"):
        SealChecker("clique").check(zero_r)
    short = dict(rec, extraData=_hex(extra[:96]))
    with pytest.raises(SealError, match=r"block 3: Clique extraData is 96 bytes"):
        clique_seal_hash(short)
    with pytest.raises(SealError, match="block 3"):
        SealChecker("clique", rec["authorities"]).check(short)
    assert detect_engine(short) == "none"


@NO_DATA
def test_aura_tampered_signature() -> None:
    rec = _pick(AURA, "kovan", 8053099)
    checker = SealChecker("aura", rec["validators"])
    flipped = dict(rec, signature=_flip(rec["signature"], 5))
    try:
        result = checker.check(flipped)
    except SealError as exc:
        assert "block 8053099" in str(exc)
    else:
        assert result.authorized is False and "not the block author" in result.reason
    tampered_header = dict(rec, timestamp=hex(int(rec["timestamp"], 16) + 4))
    result = checker.check(tampered_header)
    assert result.authorized is False and result.signer != to_checksum_address(rec["signer"])
    with pytest.raises(SealError, match=r"block 8053099: AuRa signature is 64 bytes"):
        aura_signer(dict(rec, signature=rec["signature"][:-2]))
    with pytest.raises(SealError, match=r"block 8053099: no AuRa seal"):
        SealChecker("aura").check({k: v for k, v in rec.items() if k != "signature"})
    with pytest.raises(SealError, match=r"block 8053099: AuRa sealFields are not valid RLP"):
        aura_signer(dict(rec, sealFields=["0xb8", "0x" + "ab" * 66]))
    with pytest.raises(SealError, match="empty-steps"):
        aura_signer(dict(rec, sealFields=["0x01", "0x02", "0xc0"]))


@NO_DATA
def test_malformed_header_fields_name_the_field() -> None:
    rec = _pick(CLIQUE, "goerli", 4)
    with pytest.raises(SealError, match=r"block 4: header field 'stateRoot' is missing"):
        block_hash({k: v for k, v in rec.items() if k != "stateRoot"})
    with pytest.raises(SealError, match=r"block 4: header field 'parentHash' is 31 bytes"):
        clique_signer(dict(rec, parentHash=rec["parentHash"][:-2]))
    with pytest.raises(SealError, match=r"block 4: header field 'gasUsed' is malformed"):
        clique_seal_hash(dict(rec, gasUsed="lots"))
    with pytest.raises(SealError, match="mapping"):
        SealChecker().check([1, 2, 3])  # type: ignore[arg-type]


@NO_DATA
def test_bytes_and_int_values_are_accepted() -> None:
    """web3 returns HexBytes and ints rather than hex strings; same answers."""
    rec = _pick(CLIQUE, "goerli", 5102442)  # the record with baseFeePerGas
    converted: Record = {}
    for key, value in rec.items():
        if key in ("difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas"):
            converted[key] = int(value, 16)
        elif isinstance(value, str) and value.startswith("0x"):
            converted[key] = bytes.fromhex(value[2:])
        else:
            converted[key] = value
    assert block_hash(converted) == block_hash(rec)
    assert clique_signer(converted) == to_checksum_address(rec["signer"])


# ------------------------------------------------------------------ configuration


def test_checker_config_errors() -> None:
    with pytest.raises(ConfigError, match="poa.engine"):
        SealChecker("ibft")
    with pytest.raises(ConfigError, match="poa.authorities"):
        SealChecker("clique", ["0x1234"])
    addr = "0x7ffc57839b00206d1ad20c69a1981b489f772031"
    with pytest.raises(ConfigError, match="duplicate"):
        SealChecker("clique", [addr, addr.upper().replace("0X", "0x")])
    checker = SealChecker("clique", [addr.upper().replace("0X", "0x")])
    assert checker.authorities == (to_checksum_address(addr),)
    assert checker.engine == "clique"


@NO_DATA
def test_auto_locks_on_first_seal() -> None:
    rec = _pick(CLIQUE, "goerli", 1)
    checker = SealChecker("auto")
    assert checker.check(rec).engine == "clique"
    stripped = dict(rec, extraData="0x")
    with pytest.raises(SealError, match=r"block 1: carries no seal, but .* sealed as clique"):
        checker.check(stripped)
    with pytest.raises(SealError, match=r"sealed as aura, but .* sealed as clique"):
        checker.check(AURA[0])


# ------------------------------------------------------------------ anvil (dev chain)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    req = urllib.request.Request(url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        answer = json.load(resp)
    assert "error" not in answer, answer
    return answer["result"]


def _anvil_command() -> list[str]:
    # node_modules/.bin/anvil is a node wrapper that spawns the platform binary and, on
    # SIGTERM, exits without reaping it; run that binary directly when it is there.
    direct = sorted(REPO.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    wrapper = REPO / "node_modules" / ".bin" / "anvil"
    if direct:
        return [str(direct[0])]
    if wrapper.exists():
        return [str(wrapper)]
    pytest.skip(f"anvil not installed under {REPO / 'node_modules'} (run make setup)")


def _start_anvil(*extra: str) -> tuple[subprocess.Popen[bytes], str]:
    cmd = _anvil_command()
    for _ in range(3):  # a free port can be taken between probe and bind
        port = _free_port()
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port), "--silent", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                _rpc(url, "eth_chainId", [])
                return proc, url
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        _stop_anvil(proc)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    pytest.fail(f"anvil did not start: {err[:500]}")


def _stop_anvil(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def anvil_blocks() -> Iterator[list[dict[str, Any]]]:
    """Blocks 0 and 1 of a fresh anvil with its default (newest) hardfork."""
    proc, url = _start_anvil()
    try:
        _rpc(url, "evm_mine", [])
        yield [_rpc(url, "eth_getBlockByNumber", [hex(n), False]) for n in (0, 1)]
    finally:
        _stop_anvil(proc)


def test_anvil_block_hash_and_no_seal(anvil_blocks: list[dict[str, Any]]) -> None:
    for block in anvil_blocks:
        assert _hex(block_hash(block)) == block["hash"]
        assert detect_engine(block) == "none"
    # anvil 1.x defaults to Prague: all later header fields are there.
    assert "requestsHash" in anvil_blocks[1]


def test_anvil_check_is_off_logged_once(
    anvil_blocks: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.poa")
    checker = SealChecker("auto", ["0x7ffc57839b00206d1ad20c69a1981b489f772031"])
    results = [checker.check(b) for b in anvil_blocks * 3]
    for block, result in zip(anvil_blocks * 3, results):
        number = int(block["number"], 16)
        assert result == SealResult("none", None, None, None, result.reason, number)
        assert result.reason.startswith("seal check off")
    off = [r for r in caplog.records if r.name == "edge.poa" and "seal check is off" in r.message]
    assert len(off) == 1
    # a second checker (another chain) says so once too; "none" is quiet after that.
    none_checker = SealChecker("none")
    for block in anvil_blocks * 2:
        assert none_checker.check(block).engine == "none"
    off = [r for r in caplog.records if r.name == "edge.poa" and "seal check is off" in r.message]
    assert len(off) == 2
    # Forcing Clique on a chain without seals is an error, not a silent pass.
    with pytest.raises(SealError, match=r"block 0: Clique extraData is 0 bytes"):
        SealChecker("clique").check(anvil_blocks[0])


@pytest.mark.parametrize("hardfork", ["frontier", "london", "shanghai", "cancun"])
def test_anvil_block_hash_older_hardforks(hardfork: str) -> None:
    """The RLP field order holds for each prefix of the later header fields.

    anvil's genesis on pre-Cancun forks states blobGasUsed/excessBlobGas without
    baseFeePerGas/withdrawalsRoot; its hash covers exactly the fields stated.
    """
    proc, url = _start_anvil("--hardfork", hardfork)
    try:
        _rpc(url, "evm_mine", [])
        for n in (0, 1):
            block = _rpc(url, "eth_getBlockByNumber", [hex(n), False])
            assert _hex(block_hash(block)) == block["hash"], (hardfork, n)
            assert SealChecker().check(block).engine == "none"
    finally:
        _stop_anvil(proc)


def test_anvil_block_hash_blob_fields_order(tmp_path: Path) -> None:
    """blobGasUsed comes before excessBlobGas (EIP-4844): seen with excessBlobGas != 0.

    A genesis with excessBlobGas set makes anvil's block 1 carry a non-zero
    excessBlobGas next to blobGasUsed 0, so swapping the two changes the hash.
    """
    forks = ("homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople",
             "petersburg", "istanbul", "berlin", "london", "mergeNetsplit")
    config: dict[str, Any] = {f"{fork}Block": 0 for fork in forks}
    config.update(chainId=31337, terminalTotalDifficulty=0, shanghaiTime=0, cancunTime=0,
                  pragueTime=0)
    genesis = {
        "config": config, "nonce": "0x0", "timestamp": "0x6000", "extraData": "0x",
        "gasLimit": "0x1c9c380", "difficulty": "0x0", "baseFeePerGas": "0x3b9aca00",
        "excessBlobGas": "0x60000", "blobGasUsed": "0x0", "alloc": {},
    }
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(genesis))
    proc, url = _start_anvil("--init", str(path))
    try:
        _rpc(url, "evm_mine", [])
        block = _rpc(url, "eth_getBlockByNumber", ["0x1", False])
        assert int(block["excessBlobGas"], 16) != int(block["blobGasUsed"], 16)
        assert _hex(block_hash(block)) == block["hash"]
    finally:
        _stop_anvil(proc)
