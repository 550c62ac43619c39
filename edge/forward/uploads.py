"""Upload planning for the testnet tier: every transaction fits the chain it goes to.

Pure functions (no I/O): the forward stage reads the target chain's block gas limit and
hands it in. Nothing is sized from a fixed byte count; everything follows from gas:

- **Calldata cost** (:func:`calldata_gas`): 21,000 + 4 gas per zero byte + 16 per non-zero
  byte (EIP-2028), and the EIP-7623 floor (Prague): ``21,000 + 10 * tokens`` with
  ``tokens = zero bytes + 4 * non-zero bytes``; a transaction pays the larger of the floor
  and standard cost plus execution.
- **Execution cost** of ``CrudStore.publishMany`` (:func:`publish_many_execution_gas`): an
  upper bound from what it stores per key (two slots: writer and block, and the value's
  keccak256; a fresh slot is 22,100 gas: EIP-2929 cold access + EIP-2200 zero to
  non-zero), its ``Published`` log that carries the value (LOG3: 375 + 3 x 375 + 8 per
  data byte) and memory; checked against real anvil receipts in the tests. Publishing
  costs about 16-40 gas a byte of calldata plus 8 of log data, where storing the value
  (``createMany``) cost 690 a byte (22,100 per 32-byte word): the testnets' block gas is
  what bounds the rate of metadata a device can forward, so this is the form used.
- **Budget** (:class:`UploadBudget`): a share of the block gas limit (default one half, so a
  transaction still fits a block that already carries others), never above the EIP-7825
  per-transaction cap (2^24 gas, Osaka), and calldata well under geth's 128 KiB
  transaction size limit (``oversized data``).

:func:`plan_transactions` packs upload rows into consecutive ``publishMany`` groups under
the budget; :meth:`UploadBudget.max_value_bytes` is the largest blob one transaction can
store alone (what chunks and manifest parts are sized to). :func:`is_size_refusal` names
the node answers that can never succeed with the same bytes (re-plan, do not retry).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from edge.errors import EdgeError
from edge.evidence.manifest_tree import split_manifest
from edge.evidence.metadata import Manifest, Metadata, chunk_metadata

__all__ = [
    "MAX_TX_CALLDATA",
    "TX_GAS_CAP",
    "UploadBudget",
    "UploadTooLarge",
    "calldata_gas",
    "upload_calldata_len",
    "publish_many_execution_gas",
    "publish_many_gas",
    "is_size_refusal",
    "plan_transactions",
    "encrypt_batch_upload",
    "encrypt_checkpoint_upload",
]

UploadRow = tuple[int, bytes, bytes]
"""One blob to store: ``(part, key, value)``; part >= 0 a chunk (its index), -1 the root
manifest (key = the locator), -2, -3, ... the manifest's parts."""

TX_GAS_CAP = 1 << 24
"""EIP-7825 (Osaka): the most gas one transaction may ask for (16,777,216)."""
MAX_TX_CALLDATA = 120 * 1024
"""Calldata bytes per upload transaction: under geth's 128 KiB transaction size limit
(``txMaxSize``: larger ones are refused as ``oversized data``), with room for the
signature, RLP envelope and access list."""

_PUBLICATION = 2 * 2_100 + 20_000 + 22_100  # two cold reads, the read slot set, a fresh cold slot set
_PER_KEY = 3_000  # ABI decoding, keccak of the slot, loop and call overhead per key (measured ~1,700)
_PER_WORD = 200  # copying one 32-byte word calldata -> memory -> storage, log data copy
_BASE = 5_000  # dispatch, array headers, length check
_LOG = 375 + 3 * 375  # LOG3 base + topics
_SIZE_REFUSALS = (
    "exceedsblockgaslimit", "exceedstheblockgaslimit", "intrinsicgastoohigh", "oversizeddata",
    "gaslimittoohigh", "transactiongaslimittoohigh", "txgaslimitexceeds", "txtoolarge",
    "transactiontoolarge",
)


class UploadTooLarge(EdgeError):
    """One upload row cannot fit in any transaction under the budget (it must be cut
    smaller, i.e. the checkpoint re-encrypted with smaller pieces)."""


def calldata_gas(data: bytes) -> tuple[int, int]:
    """``(standard, floor)`` intrinsic gas of a call with ``data``: standard is 21,000 + 4
    per zero byte + 16 per non-zero byte (EIP-2028); floor is 21,000 + 10 per token,
    tokens = zero bytes + 4 x non-zero bytes (EIP-7623)."""
    zeros = data.count(0)
    tokens = zeros + 4 * (len(data) - zeros)
    return 21_000 + 4 * tokens, 21_000 + 10 * tokens


def _words(n: int) -> int:
    return (n + 31) // 32


def upload_calldata_len(values: Sequence[int]) -> int:
    """Calldata bytes of ``publishMany(bytes32[] keys, bytes[] values)`` for values of
    these lengths (selector, two array heads, keys, offsets, lengths, padded values)."""
    return 4 + 64 + 32 + 32 * len(values) + 32 + sum(64 + 32 * _words(v) for v in values)


def publish_many_execution_gas(values: Sequence[int]) -> int:
    """Upper bound of the execution gas of ``CrudStore.publishMany`` publishing values of
    these lengths under fresh keys (module doc).

    Per key: two cold reads (is the key created or published?), two fresh slots (writer and
    block, then the digest: 20,000 warm + 22,100 cold), keccak256 of the value, the
    ``Published`` log (LOG3, 64 + padded value bytes of data), copying; plus the quadratic
    memory cost (EIP-150: words^2 / 512) of the largest value.
    """
    gas = _BASE
    widest = 0
    for v in values:
        w = _words(v)
        widest = max(widest, w)
        gas += _PER_KEY + _PUBLICATION + _LOG + 8 * (64 + 32 * w) + _PER_WORD * w
    mem = widest + 16
    return gas + 3 * mem + mem * mem // 512


def publish_many_gas(values: Sequence[int]) -> int:
    """Upper bound of the gas a ``publishMany`` transaction of values of these lengths uses
    (the larger of the EIP-7623 floor and standard calldata plus execution), counting every
    calldata byte as non-zero (encrypted data is random; ABI padding only lowers the cost)."""
    n = upload_calldata_len(values)
    standard, floor = 21_000 + 16 * n, 21_000 + 40 * n
    return max(standard + publish_many_execution_gas(values), floor)


@dataclass(frozen=True, slots=True)
class UploadBudget:
    """What one upload transaction may use on one chain.

    Attributes:
        gas: gas limit of one upload transaction (its planned use, with a margin on top).
        calldata: calldata bytes of one upload transaction.
        block_gas_limit: the chain's block gas limit it was derived from.
        margin: gas asked for on top of the planned use (fraction, e.g. 0.1).
    """

    gas: int
    calldata: int
    block_gas_limit: int
    margin: float = 0.1

    @classmethod
    def for_block(cls, block_gas_limit: int, *, share: float = 0.5, margin: float = 0.1,
                  calldata: int = MAX_TX_CALLDATA) -> UploadBudget:
        """The budget on a chain whose blocks hold ``block_gas_limit`` gas.

        ``share`` of the block (0 < share <= 1), minus ``margin``, never above the EIP-7825
        cap: ``gas = min(share * block_gas_limit, 2^24) / (1 + margin)``.

        Raises:
            EdgeError: a block gas limit too small for even one small upload, or a share
                or margin out of range.
        """
        if not 0 < share <= 1 or not 0 <= margin < 1:
            raise EdgeError(f"upload budget: share {share} must be in (0, 1], margin {margin} in [0, 1)")
        cap = min(int(block_gas_limit * share), TX_GAS_CAP)
        gas = int(cap / (1 + margin))
        if gas < publish_many_gas([1024]):
            raise EdgeError(f"upload budget: a block gas limit of {block_gas_limit} cannot hold an upload "
                            f"of 1 KiB (share {share})")
        return cls(gas, calldata, block_gas_limit, margin)

    def gas_limit(self, planned: int) -> int:
        """The gas limit to sign for a transaction planned at ``planned`` gas (margin on
        top, never above the share of the block the budget was cut from)."""
        return min(int(planned * (1 + self.margin)), int(self.gas * (1 + self.margin)))

    def fits(self, values: Sequence[int]) -> bool:
        """Whether one ``publishMany`` of values of these lengths fits the budget."""
        return publish_many_gas(values) <= self.gas and upload_calldata_len(values) <= self.calldata

    def max_value_bytes(self) -> int:
        """The largest value one ``publishMany`` can carry alone under this budget (bytes)."""
        lo, hi = 0, self.calldata
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits([mid]):
                lo = mid
            else:
                hi = mid - 1
        return lo


_R = TypeVar("_R", bound=tuple[int, bytes, bytes])


def plan_transactions(rows: Sequence[_R], budget: UploadBudget) -> list[list[_R]]:
    """Pack upload rows ``(part, key, value)`` into consecutive ``publishMany`` groups, in
    order, each within ``budget`` (greedy: a group closes when the next row would not fit).

    Raises:
        UploadTooLarge: a row that does not fit even alone (its part and size named).
    """
    out: list[list[_R]] = []
    sizes: list[int] = []
    for row in rows:
        n = len(row[2])
        if not budget.fits([n]):
            raise UploadTooLarge(f"upload part {row[0]} of {n} bytes does not fit one transaction "
                                 f"(budget {budget.gas} gas, {budget.calldata} calldata bytes; at most "
                                 f"{budget.max_value_bytes()} bytes)")
        if out and budget.fits([*sizes, n]):
            out[-1].append(row)
            sizes.append(n)
        else:
            out.append([row])
            sizes = [n]
    return out


def is_size_refusal(error: str | None) -> bool:
    """Whether a node's (or the tx sender's) refusal means the transaction can never be
    included as it is: over the block gas limit, over the per-transaction gas cap,
    ``intrinsic gas too high``, ``oversized data``. Such a refusal is re-planned with
    smaller transactions, never retried with the same bytes."""
    if not error:
        return False
    m = error.lower().replace(" ", "").replace("_", "").replace("-", "")
    return any(k in m for k in _SIZE_REFUSALS)


def _manifest_rows(root: bytes, parts: Sequence[tuple[bytes, bytes]], locator: bytes) -> list[UploadRow]:
    return [(-2 - i, k, b) for i, (k, b) in enumerate(parts)] + [(-1, locator, root)]


def encrypt_checkpoint_upload(md: Metadata, *, auditors: Sequence[bytes], device_key: bytes,
                           stores: Sequence[tuple[int, bytes]], chunk_bytes: int,
                           max_blob: int) -> tuple[bytes, dict[int, list[UploadRow]]]:
    """Encrypt one checkpoint's metadata into upload rows that each fit one transaction.

    Chunks are ``min(chunk_bytes, max_blob)`` bytes and spread over the testnets; the
    manifest is split into parts of at most ``max_blob`` bytes when needed
    (:func:`edge.evidence.manifest_tree.split_manifest`); the root and its parts are stored
    on every testnet.

    Args:
        md: the metadata. auditors: public keys. device_key: the device's private key.
        stores: (testnet chain id, store address) pairs. chunk_bytes: the configured
        chunk size. max_blob: the smallest :meth:`UploadBudget.max_value_bytes` of the
        testnets.

    Returns:
        ``(locator, {testnet chain id: rows})``.

    Raises:
        CryptoError: bad keys, no stores, or ``max_blob`` too small for one manifest entry.
    """
    chunks, manifest = chunk_metadata(md, auditors=auditors, device_key=device_key, stores=stores,
                                      chunk_bytes=max(1, min(chunk_bytes, max_blob)))
    locator = os.urandom(32)
    root, parts = split_manifest(manifest, auditors, max_blob)
    rows: dict[int, list[UploadRow]] = {cid: [] for cid, _ in stores}
    for i, ch in enumerate(chunks):
        rows[ch.chain_id].append((i, ch.key, ch.data))
    for cid in rows:
        rows[cid].extend(_manifest_rows(root, parts, locator))
    return locator, rows


def encrypt_batch_upload(manifest: Manifest, locator: bytes, *, auditors: Sequence[bytes],
                      chain_ids: Sequence[int], max_blob: int) -> dict[int, list[UploadRow]]:
    """Upload rows of a batch manifest (stored under ``locator``, split when needed) for
    every testnet in ``chain_ids``. Raises CryptoError as :func:`split_manifest`."""
    root, parts = split_manifest(manifest, auditors, max_blob)
    return {cid: _manifest_rows(root, parts, locator) for cid in chain_ids}
