"""Clique (EIP-225) headers signed here with known keys, built with eth-keys and rlp only.

The seal hash and block hash are computed in this file, independently of
``edge.chain.poa``: seal hash = keccak256(RLP(header with extraData[:-65])), seal =
``r ‖ s ‖ v`` (v in {0, 1}), block hash = keccak256(RLP(full header)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth_hash.auto import keccak
from eth_keys.datatypes import PrivateKey

EMPTY_UNCLES = bytes.fromhex("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")
EMPTY_TRIE = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
AUTH = b"\xff" * 8
DROP = b"\x00" * 8
ZERO = "0x" + "00" * 20

# Known keys 0x01..01, 0x02..02, ...: their addresses are fixed, their order arbitrary.
KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(6)]
ADDRS = [k.public_key.to_checksum_address() for k in KEYS]
BY_ADDR = {a.lower(): k for a, k in zip(ADDRS, KEYS)}

Header = dict[str, Any]


def _h(b: bytes) -> str:
    return "0x" + b.hex()


def _fields(h: Header, extra: bytes) -> list[Any]:
    def b(k: str) -> bytes:
        return bytes.fromhex(h[k][2:])

    def i(k: str) -> int:
        return int(h[k], 16)

    return [b("parentHash"), b("sha3Uncles"), b("miner"), b("stateRoot"), b("transactionsRoot"),
            b("receiptsRoot"), b("logsBloom"), i("difficulty"), i("number"), i("gasLimit"), i("gasUsed"),
            i("timestamp"), extra, b("mixHash"), b("nonce")]


def extra_data(signers: Sequence[str] = (), seal: bytes = bytes(65)) -> bytes:
    """vanity(32) ‖ signers ‖ seal, with a recognisable vanity."""
    return b"edge-test".ljust(32, b"\x00") + b"".join(bytes.fromhex(s[2:]) for s in signers) + seal


def finish(h: Header, key: PrivateKey | None) -> Header:
    """Sign ``h`` with ``key`` (None: leave the seal as it is) and set its hash."""
    extra = bytes.fromhex(h["extraData"][2:])
    if key is not None:
        seal_hash = keccak(rlp.encode(_fields(h, extra[:-65])))
        extra = extra[:-65] + key.sign_msg_hash(seal_hash).to_bytes()
        h["extraData"] = _h(extra)
    h["hash"] = _h(keccak(rlp.encode(_fields(h, extra))))
    return h


def genesis(signers: Sequence[str], timestamp: int = 1_700_000_000) -> Header:
    """A geth-style Clique genesis header listing ``signers`` (sorted, as geth writes them)."""
    h: Header = {
        "parentHash": _h(bytes(32)), "sha3Uncles": _h(EMPTY_UNCLES), "miner": ZERO,
        "stateRoot": _h(EMPTY_TRIE), "transactionsRoot": _h(EMPTY_TRIE), "receiptsRoot": _h(EMPTY_TRIE),
        "logsBloom": _h(bytes(256)), "difficulty": "0x1", "number": "0x0", "gasLimit": hex(30_000_000),
        "gasUsed": "0x0", "timestamp": hex(timestamp),
        "extraData": _h(extra_data(sorted(signers, key=str.lower))), "mixHash": _h(bytes(32)), "nonce": _h(DROP),
    }
    return finish(h, None)


@dataclass
class Sealer:
    """Seals children of a parent header; ``signers`` is the set the test expects (for in-turn)."""

    signers: list[str]
    period: int = 1
    epoch: int = 30000

    def in_turn(self, number: int, addr: str) -> bool:
        ordered = sorted(s.lower() for s in self.signers)
        return ordered[number % len(ordered)] == addr.lower()

    def child(self, parent: Header, addr: str, *, vote: tuple[str, bool] | None = None,
              difficulty: int | None = None, dt: int | None = None, nonce: bytes | None = None,
              checkpoint: Sequence[str] | None = None, key: PrivateKey | None = None,
              salt: int = 0) -> Header:
        """A child of ``parent`` sealed by ``addr`` (or ``key``), optionally voting.

        ``difficulty`` defaults to the right one for ``self.signers``; a checkpoint
        (number % epoch == 0) lists ``checkpoint`` or, by default, ``self.signers``;
        ``salt`` changes the gas limit to make a sibling with another hash.
        """
        number = int(parent["number"], 16) + 1
        is_cp = number % self.epoch == 0
        listed: Sequence[str] = ()
        if is_cp:
            listed = sorted(checkpoint if checkpoint is not None else self.signers, key=str.lower)
        h: Header = {
            "parentHash": parent["hash"], "sha3Uncles": _h(EMPTY_UNCLES),
            "miner": vote[0].lower() if vote else ZERO,
            "stateRoot": _h(EMPTY_TRIE), "transactionsRoot": _h(EMPTY_TRIE), "receiptsRoot": _h(EMPTY_TRIE),
            "logsBloom": _h(bytes(256)),
            "difficulty": hex(difficulty if difficulty is not None else (2 if self.in_turn(number, addr) else 1)),
            "number": hex(number), "gasLimit": hex(30_000_000 + salt), "gasUsed": "0x0",
            "timestamp": hex(int(parent["timestamp"], 16) + (self.period if dt is None else dt)),
            "extraData": _h(extra_data(listed)), "mixHash": _h(bytes(32)),
            "nonce": _h(nonce if nonce is not None else (AUTH if vote and vote[1] else DROP)),
        }
        return finish(h, key if key is not None else BY_ADDR[addr.lower()])
