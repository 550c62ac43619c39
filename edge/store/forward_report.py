"""A read-only report on ANOTHER process's outbox: how its checkpoints were forwarded.

Used by ``benchmarks/soak.py`` (a benchmark that runs ``edge run`` as a child process):
per checkpoint its range, record count, when it was cut and when its anchor transaction
was confirmed on mainnet (the forwarding lag is the difference), the transactions that
failed with their errors (to count refusals for size) and the alarms by kind. Blocking
(plain :mod:`sqlite3`, ``mode=ro``): call it in a thread from async code.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CheckpointForwarding", "FailedTx", "ForwardReport", "forward_report"]


@dataclass(frozen=True, slots=True)
class CheckpointForwarding:
    """One checkpoint: blocks ``from_block..to_block`` (inclusive), ``records`` (leaves),
    ``state`` (``sealed`` ... ``anchored``), ``cut_at`` (wall seconds since the epoch, when
    the checkpoint stage stored it), ``anchored_at`` (wall seconds when its anchor
    transaction reached the configured confirmations on mainnet; None while not, or when
    another device anchored it) and ``last_block_time`` (the local chain's timestamp of
    ``to_block``, seconds; None if that block is not stored)."""

    from_block: int
    to_block: int
    records: int
    state: str
    cut_at: float
    anchored_at: float | None
    last_block_time: int | None

    @property
    def lag_s(self) -> float | None:
        """Seconds from the cut to the anchor confirmed on mainnet (None: not yet)."""
        return None if self.anchored_at is None else self.anchored_at - self.cut_at


@dataclass(frozen=True, slots=True)
class FailedTx:
    """A transaction intent in state ``failed``: target chain, purpose (``upload``,
    ``anchor``, ...) and the error the tx sender stored (the node's refusal, or the
    reason it was never signed)."""

    chain_id: int
    purpose: str
    error: str


@dataclass(frozen=True, slots=True)
class ForwardReport:
    """What :func:`forward_report` read: checkpoints oldest first, failed transactions,
    ``alarms`` as kind -> count, and ``txs`` as ``(chain id, purpose, state) -> count``."""

    checkpoints: list[CheckpointForwarding] = field(default_factory=list)
    failed_txs: list[FailedTx] = field(default_factory=list)
    alarms: dict[str, int] = field(default_factory=dict)
    txs: dict[tuple[int, str, str], int] = field(default_factory=dict)


_CHECKPOINTS = """
SELECT c.from_block, c.to_block, c.leaves, c.state, c.created_at,
       CASE WHEN t.state = 'confirmed' THEN t.updated_at END, b.timestamp
FROM checkpoints c
LEFT JOIN anchors a ON a.id = c.anchor_id
LEFT JOIN txs t ON t.id = a.tx_id
LEFT JOIN blocks b ON b.chain_id = c.chain_id AND b.number = c.to_block
WHERE c.chain_id = ?
ORDER BY c.from_block
"""


def forward_report(path: Path, chain_id: int) -> ForwardReport:
    """Read the forwarding state of the local chain ``chain_id`` from the outbox at
    ``path``, opened read-only (the owning agent may be running: SQLite WAL readers do
    not block it). Returns an empty report while the file or its tables do not exist yet.
    Raises nothing else for a missing outbox; :class:`sqlite3.Error` other than a missing
    file or table propagates."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return ForwardReport()
    try:
        cps = [CheckpointForwarding(int(f), int(t), int(n), str(s), float(c), None if a is None else float(a),
                                    None if ts is None else int(ts))
               for f, t, n, s, c, a, ts in con.execute(_CHECKPOINTS, (chain_id,))]
        failed = [FailedTx(int(c), str(p), str(e or "")) for c, p, e in
                  con.execute("SELECT chain_id, purpose, error FROM txs WHERE state = 'failed' ORDER BY id")]
        alarms = {str(k): int(n) for k, n in con.execute("SELECT kind, count(*) FROM alarms GROUP BY kind")}
        txs = {(int(c), str(p), str(s)): int(n) for c, p, s, n in
               con.execute("SELECT chain_id, purpose, state, count(*) FROM txs GROUP BY chain_id, purpose, state")}
        return ForwardReport(cps, failed, alarms, txs)
    except sqlite3.OperationalError as e:
        if "no such table" in str(e) or "unable to open" in str(e):
            return ForwardReport()
        raise
    finally:
        con.close()
