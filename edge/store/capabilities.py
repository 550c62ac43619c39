"""Outbox queries for capability reports (table ``capabilities``, keyed by ``code_hash``).

One row per distinct runtime code: the analyzer version that produced it, its status
(``ok``, ``timeout`` or ``empty``), the flag names (JSON list, in
:data:`edge.scoring.capabilities.FLAG_NAMES` order), the evidence (JSON list, one object
per flag as :meth:`edge.scoring.capabilities.Flag.to_json` gives it), the analysis time
(ms) and when it was stored (UNIX s).

A code is *unanalyzed* for an analyzer version when it is the code of at least one
recorded contract, its size is within EIP-170 (as for scoring), and it has no row, or a
row of another analyzer version (a new analyzer analyses everything again and replaces
the row). A ``timeout`` row is a result: the same analyzer does not retry it. Writes are
idempotent (``INSERT OR REPLACE`` on the primary key).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.chain.records import EIP170_MAX_CODE_SIZE
from edge.store.db import Outbox
from edge.store.scores import UnscoredCode

__all__ = [
    "CapabilityRow",
    "capability_counts",
    "count_unanalyzed",
    "get_capability",
    "latest_score",
    "put_capability",
    "unanalyzed_codes",
]

_UNANALYZED_HASHES = (
    "SELECT DISTINCT k.code_hash FROM contracts AS k"
    " WHERE NOT EXISTS (SELECT 1 FROM capabilities AS a"
    "                   WHERE a.code_hash = k.code_hash AND a.analyzer = :analyzer)"
    " AND k.code_size <= :max_size"
)


@dataclass(frozen=True, slots=True)
class CapabilityRow:
    """The stored capability report of one code.

    Attributes:
        code_hash: keccak-256 of the runtime code (32 bytes).
        analyzer: analyzer version (``edge.scoring.capabilities.ANALYZER_VERSION``).
        status: ``ok``, ``timeout`` (budget ran out: no flags) or ``empty``.
        flags: flag names (GoPlus token-security field names).
        evidence: one JSON object per flag (``name, confidence, selectors, signatures,
            slots, opcodes, reason``).
        elapsed_ms: analysis wall time, milliseconds.
        analyzed_at: UNIX time (s) the row was stored.
    """

    code_hash: bytes
    analyzer: str
    status: str
    flags: tuple[str, ...]
    evidence: tuple[dict[str, Any], ...]
    elapsed_ms: float
    analyzed_at: float

    @property
    def reasons(self) -> tuple[str, ...]:
        """One readable sentence per flag (from the evidence)."""
        return tuple(str(e.get("reason", e.get("name", ""))) for e in self.evidence)


_COLS = "code_hash, analyzer, status, flags, evidence, elapsed_ms, analyzed_at"


def _row(r: Sequence[Any]) -> CapabilityRow:
    return CapabilityRow(bytes(r[0]), str(r[1]), str(r[2]), tuple(str(f) for f in json.loads(r[3])),
                         tuple(json.loads(r[4])), float(r[5]), float(r[6]))


async def put_capability(ob: Outbox, row: CapabilityRow) -> None:
    """Store (or replace) one report in its own transaction.

    Raises:
        OutboxFull / OutboxError: from the transaction (rolled back whole).
    """
    async with ob.transaction() as tx:
        await tx.execute(
            f"INSERT OR REPLACE INTO capabilities ({_COLS}) VALUES (?,?,?,?,?,?,?)",
            (row.code_hash, row.analyzer, row.status, json.dumps(list(row.flags), separators=(",", ":")),
             json.dumps(list(row.evidence), separators=(",", ":"), sort_keys=True), float(row.elapsed_ms),
             float(row.analyzed_at)),
        )


async def get_capability(ob: Outbox, code_hash: bytes) -> CapabilityRow | None:
    """The stored report of ``code_hash`` (32 bytes), or None."""
    r = await ob.fetchone(f"SELECT {_COLS} FROM capabilities WHERE code_hash=?", (code_hash,))
    return None if r is None else _row(r)


async def unanalyzed_codes(
    ob: Outbox, analyzer: str, limit: int, *, max_size: int = EIP170_MAX_CODE_SIZE
) -> list[UnscoredCode]:
    """Up to ``limit`` codes of recorded contracts with no report of ``analyzer``.

    Args:
        ob: the open outbox. analyzer: analyzer version. limit: >= 1.
        max_size: codes larger than this (bytes) are skipped.

    Returns:
        Distinct ``(code_hash, code)`` records, in ``code_hash`` order.

    Raises:
        OutboxError: the outbox is closed or the query failed.
    """
    rows = await ob.fetchall(
        "SELECT c.code_hash, c.code FROM codes AS c"
        f" WHERE c.code_hash IN ({_UNANALYZED_HASHES} LIMIT :limit) ORDER BY c.code_hash",
        {"analyzer": analyzer, "max_size": max_size, "limit": int(limit)},  # type: ignore[arg-type]
    )
    return [UnscoredCode(bytes(h), bytes(c)) for h, c in rows]


async def count_unanalyzed(ob: Outbox, analyzer: str, *, max_size: int = EIP170_MAX_CODE_SIZE) -> int:
    """How many distinct recorded codes have no report of ``analyzer`` (the backlog)."""
    row = await ob.fetchone(
        f"SELECT count(*) FROM ({_UNANALYZED_HASHES})",
        {"analyzer": analyzer, "max_size": max_size},  # type: ignore[arg-type]
    )
    return int(row[0]) if row else 0


async def capability_counts(ob: Outbox) -> tuple[dict[str, int], dict[str, int]]:
    """``(codes per flag, codes per status)`` over every stored report (any analyzer).

    Flags are counted once per code (``json_each`` over the flag list); a flag no code
    carries is absent. Both dicts are sorted by key.
    """
    flags = await ob.fetchall(
        "SELECT j.value, count(*) FROM capabilities AS a, json_each(a.flags) AS j GROUP BY j.value ORDER BY j.value")
    status = await ob.fetchall("SELECT status, count(*) FROM capabilities GROUP BY status ORDER BY status")
    return {str(f): int(n) for f, n in flags}, {str(s): int(n) for s, n in status}


async def latest_score(ob: Outbox, code_hash: bytes) -> tuple[float, bool] | None:
    """``(score, flagged)`` of the newest stored score of ``code_hash`` (any model), or None."""
    r = await ob.fetchone("SELECT score, flagged FROM scores WHERE code_hash=? ORDER BY scored_at DESC LIMIT 1",
                          (code_hash,))
    return None if r is None else (float(r[0]), bool(r[1]))

