"""EIP-712 checkpoint signatures and ids: edge.evidence.eip712."""

from __future__ import annotations

import os

import coincurve
import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import CryptoError
from edge.evidence.eip712 import (
    CHECKPOINT_TYPEHASH,
    DOMAIN_TYPEHASH,
    CheckpointMessage,
    Eip712Domain,
    checkpoint_digest,
    checkpoint_id,
    domain_separator,
    recover_checkpoint_signer,
    sign_checkpoint,
    struct_hash,
)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ANCHOR = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
# Literal strings, as a Solidity contract would write them (independent of the module).
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
CP_TYPE = (
    "Checkpoint(bytes32 id,uint64 chainId,uint64 fromBlock,uint64 toBlock,"
    "bytes32 lastBlockHash,bytes32 root)"
)


def _cp(chain_id: int = 1337, frm: int = 100, to: int = 199) -> CheckpointMessage:
    return CheckpointMessage.create(chain_id, frm, to, keccak(b"block 199"), keccak(b"root"))


DOMAIN = Eip712Domain(chain_id=31337, verifying_contract=ANCHOR)


def test_checkpoint_id_is_keccak_of_five_words() -> None:
    last, root = keccak(b"h"), keccak(b"r")
    words = (
        (1337).to_bytes(32, "big") + (100).to_bytes(32, "big") + (199).to_bytes(32, "big")
        + last + root
    )
    assert checkpoint_id(1337, 100, 199, last, root) == keccak(words)
    cp = CheckpointMessage.create(1337, 100, 199, last, root)
    assert cp.id == keccak(words) and cp.id_matches()


def test_digest_matches_manual_eip712_with_eth_abi() -> None:
    cp = _cp()
    dom_sep = keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "uint256", "address"],
        [keccak(DOMAIN_TYPE.encode()), keccak(b"EdgeAnchor"), keccak(b"1"), 31337, ANCHOR],
    ))
    s_hash = keccak(abi_encode(
        ["bytes32", "bytes32", "uint64", "uint64", "uint64", "bytes32", "bytes32"],
        [keccak(CP_TYPE.encode()), cp.id, cp.chain_id, cp.from_block, cp.to_block,
         cp.last_block_hash, cp.root],
    ))
    assert domain_separator(DOMAIN) == dom_sep
    assert struct_hash(cp) == s_hash
    assert checkpoint_digest(DOMAIN, cp) == keccak(b"\x19\x01" + dom_sep + s_hash)
    assert DOMAIN_TYPEHASH == keccak(DOMAIN_TYPE.encode())
    assert CHECKPOINT_TYPEHASH == keccak(CP_TYPE.encode())


def _full_message(cp: CheckpointMessage) -> dict[str, object]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Checkpoint": [
                {"name": "id", "type": "bytes32"},
                {"name": "chainId", "type": "uint64"},
                {"name": "fromBlock", "type": "uint64"},
                {"name": "toBlock", "type": "uint64"},
                {"name": "lastBlockHash", "type": "bytes32"},
                {"name": "root", "type": "bytes32"},
            ],
        },
        "primaryType": "Checkpoint",
        "domain": {"name": "EdgeAnchor", "version": "1", "chainId": 31337,
                   "verifyingContract": ANCHOR},
        "message": {"id": cp.id, "chainId": cp.chain_id, "fromBlock": cp.from_block,
                    "toBlock": cp.to_block, "lastBlockHash": cp.last_block_hash,
                    "root": cp.root},
    }


def test_signature_recovers_to_signer_and_agrees_with_eth_account() -> None:
    key = os.urandom(32)
    address = Account.from_key(key).address
    cp = _cp()
    sig = sign_checkpoint(key, DOMAIN, cp)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= N // 2
    assert recover_checkpoint_signer(DOMAIN, cp, sig) == address
    signable = encode_typed_data(full_message=_full_message(cp))
    assert Account.recover_message(signable, signature=sig) == address
    theirs = Account.sign_message(signable, key).signature
    assert recover_checkpoint_signer(DOMAIN, cp, bytes(theirs)) == address


def test_other_domain_or_message_recovers_someone_else() -> None:
    key = os.urandom(32)
    address = Account.from_key(key).address
    cp = _cp()
    sig = sign_checkpoint(key, DOMAIN, cp)
    other_chain = Eip712Domain(chain_id=1, verifying_contract=ANCHOR)
    other_contract = Eip712Domain(31337, "0x" + "11" * 20)
    other_name = Eip712Domain(31337, ANCHOR, name="OtherAnchor")
    for dom in (other_chain, other_contract, other_name):
        assert recover_checkpoint_signer(dom, cp, sig) != address
    assert recover_checkpoint_signer(DOMAIN, _cp(to=200), sig) != address


def _malleate(sig: bytes) -> bytes:
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (N - s).to_bytes(32, "big") + bytes((55 - sig[64],))


def test_high_s_is_rejected_although_ecrecover_would_accept_it() -> None:
    key = os.urandom(32)
    cp = _cp()
    sig = sign_checkpoint(key, DOMAIN, cp)
    twin = _malleate(sig)
    # the twin is a valid raw ECDSA signature for the same key (what ecrecover accepts)
    raw = coincurve.PublicKey.from_signature_and_message(
        twin[:64] + bytes((twin[64] - 27,)), checkpoint_digest(DOMAIN, cp), hasher=None
    )
    assert raw.format() == coincurve.PrivateKey(key).public_key.format()
    with pytest.raises(CryptoError, match="InvalidSignatureS"):
        recover_checkpoint_signer(DOMAIN, cp, twin)


@pytest.mark.parametrize("v", [0, 1, 26, 29, 255])
def test_bad_v_is_rejected(v: int) -> None:
    sig = sign_checkpoint(os.urandom(32), DOMAIN, _cp())
    with pytest.raises(CryptoError, match=f"InvalidSignature: v = {v}, must be 27 or 28"):
        recover_checkpoint_signer(DOMAIN, _cp(), sig[:64] + bytes((v,)))


def test_bad_length_and_zero_r_s_are_rejected() -> None:
    sig = sign_checkpoint(os.urandom(32), DOMAIN, _cp())
    for bad in (sig[:64], sig + b"\x00", b""):
        with pytest.raises(CryptoError, match=f"InvalidSignatureLength: {len(bad)} bytes"):
            recover_checkpoint_signer(DOMAIN, _cp(), bad)
    for bad in (bytes(32) + sig[32:], sig[:32] + bytes(32) + sig[64:],
                N.to_bytes(32, "big") + sig[32:]):
        with pytest.raises(CryptoError, match="InvalidSignature: r or s"):
            recover_checkpoint_signer(DOMAIN, _cp(), bad)


def test_inconsistent_id_is_neither_signed_nor_accepted() -> None:
    good = _cp()
    bad = CheckpointMessage(keccak(b"forged"), good.chain_id, good.from_block, good.to_block,
                            good.last_block_hash, good.root)
    assert not bad.id_matches()
    key = os.urandom(32)
    with pytest.raises(CryptoError, match="refusing to sign"):
        sign_checkpoint(key, DOMAIN, bad)
    with pytest.raises(CryptoError, match="does not match its fields"):
        recover_checkpoint_signer(DOMAIN, bad, sign_checkpoint(key, DOMAIN, good))


def test_bad_fields_are_named() -> None:
    with pytest.raises(CryptoError, match="verifying_contract"):
        Eip712Domain(1, "0x1234")
    with pytest.raises(CryptoError, match="verifying_contract"):
        Eip712Domain(1, ANCHOR.replace("F", "f", 1).replace("b", "B", 1))  # bad checksum
    with pytest.raises(CryptoError, match="domain chain_id = 0"):
        Eip712Domain(0, ANCHOR)
    assert Eip712Domain(1, ANCHOR.lower()).verifying_contract == ANCHOR
    assert Eip712Domain(1, bytes.fromhex(ANCHOR[2:])).verifying_contract == ANCHOR  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="from_block 5 > to_block 4"):
        checkpoint_id(1, 5, 4, bytes(32), bytes(32))
    with pytest.raises(CryptoError, match="to_block = 18446744073709551616 out of range"):
        CheckpointMessage.create(1, 0, 2**64, bytes(32), bytes(32))
    with pytest.raises(CryptoError, match="root must be 32 bytes, got 31 bytes"):
        CheckpointMessage.create(1, 0, 1, bytes(32), bytes(31))
    with pytest.raises(CryptoError, match="chain_id must be an int"):
        checkpoint_id("1", 0, 1, bytes(32), bytes(32))  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="private key must be 32 bytes"):
        sign_checkpoint(b"\x01" * 31, DOMAIN, _cp())
    with pytest.raises(CryptoError, match="not below the secp256k1 order"):
        sign_checkpoint(N.to_bytes(32, "big"), DOMAIN, _cp())


def test_signing_is_deterministic_rfc6979() -> None:
    key = os.urandom(32)
    assert sign_checkpoint(key, DOMAIN, _cp()) == sign_checkpoint(key, DOMAIN, _cp())


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32),
    st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32),
    st.integers(1, 2**256 - 1),
)
def test_property_sign_recover(chain: int, frm: int, span: int, last: bytes, root: bytes,
                               anchor_chain: int) -> None:
    to = min(frm + span, 2**64 - 1)
    cp = CheckpointMessage.create(chain, frm, to, last, root)
    dom = Eip712Domain(anchor_chain, ANCHOR)
    key = coincurve.PrivateKey()
    sig = sign_checkpoint(key.secret, dom, cp)
    assert recover_checkpoint_signer(dom, cp, sig) == Account.from_key(key.secret).address
