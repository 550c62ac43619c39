"""Outbox queries for risk scores (table ``scores``, keyed ``(code_hash, model_id)``).

A code is *unscored* for a model when it is the code of at least one recorded contract
(``contracts.code_hash``), its size is within EIP-170 (ingest records oversize code but
does not score it), and ``scores`` has no row for ``(code_hash, model_id)``. Scores of
other model ids are kept: a new model scores everything again, the old rows stay as
history. All writes are idempotent (``INSERT OR REPLACE`` on the primary key).

Scale note: the unscored set is found by an anti-join over the ``contracts_by_code``
index, so each query reads that index once (about 50 bytes per contract), not the code
blobs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from edge.store.db import Outbox
from edge.chain.records import EIP170_MAX_CODE_SIZE

__all__ = [
    "EIP170_MAX_CODE_SIZE",
    "ScoreRow",
    "UnscoredCode",
    "count_unscored",
    "first_blocks",
    "get_score",
    "put_codes_and_scores",
    "put_scores",
    "unscored_codes",
]


_UNSCORED_HASHES = (
    "SELECT DISTINCT k.code_hash FROM contracts AS k"
    " WHERE NOT EXISTS (SELECT 1 FROM scores AS s"
    "                   WHERE s.code_hash = k.code_hash AND s.model_id = :model)"
    " AND k.code_size <= :max_size"
)


@dataclass(frozen=True, slots=True)
class UnscoredCode:
    """A code waiting to be scored: keccak256 ``code_hash`` (32 bytes) and the ``code``."""

    code_hash: bytes
    code: bytes


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One score of one code under one model.

    Attributes:
        code_hash: keccak256 of the runtime code (32 bytes).
        model_id: sha256 hex of the ONNX model file.
        score: probability of malicious, in [0, 1].
        flagged: score >= the threshold in force.
        top_features: ``[[name, value, weight], ...]`` (see ``RiskModel.top_features``).
        scored_at: UNIX time (s).
    """

    code_hash: bytes
    model_id: str
    score: float
    flagged: bool
    top_features: tuple[tuple[str, float, float], ...]
    scored_at: float

    def params(self) -> tuple[bytes, str, float, int, str, float]:
        """The row as SQL parameters (``top_features`` as compact JSON text)."""
        return (
            self.code_hash,
            self.model_id,
            float(self.score),
            int(self.flagged),
            json.dumps(self.top_features, separators=(",", ":")),
            self.scored_at,
        )


_INSERT_SCORE = (
    "INSERT OR REPLACE INTO scores (code_hash, model_id, score, flagged, top_features, scored_at)"
    " VALUES (?,?,?,?,?,?)"
)


async def unscored_codes(
    ob: Outbox, model_id: str, limit: int, *, max_size: int = EIP170_MAX_CODE_SIZE
) -> list[UnscoredCode]:
    """Up to ``limit`` codes of recorded contracts with no score for ``model_id``.

    Args:
        ob: the open outbox. model_id: sha256 hex of the model. limit: >= 1.
        max_size: codes larger than this (bytes) are skipped.

    Returns:
        Distinct codes, in ``code_hash`` order.

    Raises:
        OutboxError: the outbox is closed or the query failed.
    """
    rows = await ob.fetchall(
        "SELECT c.code_hash, c.code FROM codes AS c"
        f" WHERE c.code_hash IN ({_UNSCORED_HASHES} LIMIT :limit)"
        " ORDER BY c.code_hash",
        {"model": model_id, "max_size": max_size, "limit": int(limit)},  # type: ignore[arg-type]
    )
    return [UnscoredCode(bytes(h), bytes(c)) for h, c in rows]


async def count_unscored(
    ob: Outbox, model_id: str, *, limit: int | None = None, max_size: int = EIP170_MAX_CODE_SIZE
) -> int:
    """How many distinct recorded codes have no score for ``model_id`` (the backlog).

    Args:
        limit: stop counting at this many (cheap "is a batch full?" check); None: all.
    """
    lim = -1 if limit is None else int(limit)
    row = await ob.fetchone(
        f"SELECT count(*) FROM ({_UNSCORED_HASHES} LIMIT :limit)",
        {"model": model_id, "max_size": max_size, "limit": lim},  # type: ignore[arg-type]
    )
    return int(row[0]) if row else 0


async def put_scores(ob: Outbox, rows: Sequence[ScoreRow]) -> None:
    """Store scores, all in one transaction (all or none).

    Raises:
        OutboxFull / OutboxError: from the transaction (rolled back whole).
    """
    if not rows:
        return
    async with ob.transaction() as tx:
        await tx.executemany(_INSERT_SCORE, [r.params() for r in rows])


async def put_codes_and_scores(
    ob: Outbox, codes: Sequence[tuple[bytes, bytes]], rows: Sequence[ScoreRow]
) -> None:
    """Buffer codes and their scores in one transaction (used by ``edge bench``).

    Args:
        codes: ``(code_hash, code)`` pairs, inserted with ``INSERT OR IGNORE``.
        rows: their scores.

    Raises:
        OutboxFull / OutboxError: from the transaction (rolled back whole).
    """
    if not codes and not rows:
        return
    async with ob.transaction() as tx:
        await tx.executemany(
            "INSERT OR IGNORE INTO codes (code_hash, code, size) VALUES (?,?,?)",
            [(h, c, len(c)) for h, c in codes],
        )
        await tx.executemany(_INSERT_SCORE, [r.params() for r in rows])


async def get_score(ob: Outbox, code_hash: bytes, model_id: str) -> ScoreRow | None:
    """The stored score of ``code_hash`` under ``model_id``, or None."""
    row = await ob.fetchone(
        "SELECT code_hash, model_id, score, flagged, top_features, scored_at FROM scores"
        " WHERE code_hash=? AND model_id=?",
        (code_hash, model_id),
    )
    if row is None:
        return None
    feats = tuple((str(n), float(v), float(w)) for n, v, w in json.loads(row[4]))
    return ScoreRow(bytes(row[0]), str(row[1]), float(row[2]), bool(row[3]), feats, float(row[5]))


async def deployments_of(ob: Outbox, code_hash: bytes, limit: int = 3) -> list[tuple[int, int, bytes]]:
    """Where a runtime code was deployed: up to ``limit`` ``(chain id, block number,
    20-byte address)``, oldest first."""
    rows = await ob.fetchall("SELECT chain_id, block_number, address FROM contracts WHERE code_hash=?"
                             " ORDER BY block_number LIMIT ?", (code_hash, limit))
    return [(int(c), int(b), bytes(a)) for c, b, a in rows]


async def first_blocks(ob: Outbox, code_hashes: Sequence[bytes]) -> dict[bytes, int]:
    """The lowest block number of a recorded contract carrying each code (for latency
    figures): ``{code_hash: block number}``; a hash with no contract is absent.

    Raises:
        OutboxError: the outbox is closed or the query failed.
    """
    out: dict[bytes, int] = {}
    for i in range(0, len(code_hashes), 500):  # well below SQLite's bound on parameters
        part = tuple(code_hashes[i:i + 500])
        rows = await ob.fetchall("SELECT code_hash, min(block_number) FROM contracts"
                                 f" WHERE code_hash IN ({','.join('?' * len(part))}) GROUP BY code_hash", part)
        out.update((bytes(h), int(n)) for h, n in rows)
    return out
