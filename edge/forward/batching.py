"""When to cut an anchor batch: K members ready, or the oldest has waited long enough.

Pure: the forward stage passes the ready checkpoints (ordered by block range), when each
was cut, the clock, and gets the batches to anchor now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from edge.errors import EdgeError

__all__ = ["cut_batches", "fleet_batch"]

_T = TypeVar("_T")


def cut_batches(ready: Sequence[_T], born: Sequence[float], k: int, max_wait_s: float, now: float) -> list[list[_T]]:
    """The batches to anchor now, in order.

    Full batches of ``k`` first; then the remainder (fewer than ``k``) as one partial batch
    if its oldest member was cut at least ``max_wait_s`` seconds before ``now`` (a
    partial batch is as valid as a full one: the root is over whatever member ids it
    has). With ``k == 1`` every ready checkpoint is its own batch.

    Args:
        ready: checkpoints ready to anchor, ordered by block range (oldest first).
        born: for each, when it was cut (seconds, same clock as ``now``).
        k: members per full batch (>= 1). max_wait_s: the longest wait (>= 0).
        now: the current time.

    Raises:
        EdgeError: ``born`` not one per ready checkpoint, ``k < 1`` or ``max_wait_s < 0``.
    """
    if len(born) != len(ready):
        raise EdgeError(f"cut_batches: {len(born)} times for {len(ready)} checkpoints")
    if k < 1 or max_wait_s < 0:
        raise EdgeError(f"cut_batches: k = {k} must be >= 1 and max_wait_s = {max_wait_s} >= 0")
    full = len(ready) // k * k
    out = [list(ready[i:i + k]) for i in range(0, full, k)]
    rest = list(ready[full:])
    if rest and now - min(born[full:]) >= max_wait_s:
        out.append(rest)
    return out


def fleet_batch(last_ts: Sequence[int], k: int, max_wait_s: float) -> int | None:
    """How many of the next checkpoints form the next FLEET batch, or None (not closed yet).

    Every device must cut the same batches, so the rule reads chain data only: the block
    timestamps of the checkpoints' last blocks (``last_ts``, the checkpoints after the
    previous batch, in order, aligned ranges). The batch takes checkpoints while fewer than
    ``k`` and while a checkpoint's last block is less than ``max_wait_s`` after the first
    one's; it is closed at ``k`` members or by the first checkpoint past that deadline
    (which then starts the next batch). So a partial batch closes once the chain has moved
    ``max_wait_s`` on plus one checkpoint range.

    Raises:
        EdgeError: ``k < 1`` or ``max_wait_s < 0``.
    """
    if k < 1 or max_wait_s < 0:
        raise EdgeError(f"fleet_batch: k = {k} must be >= 1 and max_wait_s = {max_wait_s} >= 0")
    if not last_ts:
        return None
    for i, ts in enumerate(last_ts[:k]):
        if i and ts - last_ts[0] >= max_wait_s:
            return i
    return k if len(last_ts) >= k else None
