"""What ``edge status`` shows, read from the outbox alone (no node needed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from edge.errors import OutboxError
from edge.store import chain_data
from edge.store.clique import current_signers
from edge.store.capabilities import capability_counts
from edge.store.db import Outbox

__all__ = ["status_info"]


async def status_info(path: Path, chain_id: int | None) -> dict[str, Any]:
    """What ``edge status`` shows, read from the outbox alone (no node needed).

    Returns a dict: outbox, chain_id, head, cursor, lag, counts (blocks, confirmed_blocks
    (also under its old name final_blocks), logs, contracts, codes, scored, flagged,
    alarms), checkpoints by state, the last anchored range, transactions by state, the
    newest alarm, outbox_mb, and
    ``capabilities``: ``{"by_status": {status: codes}, "by_flag": {flag: codes}}`` (the
    capability reports stored, :mod:`edge.store.capabilities`), and ``clique_signers``: the
    signer set of the newest stored Clique snapshot, ``{"block": number, "hash": 0x hex,
    "signers": [EIP-55 addresses]}``, or None on a chain that is not Clique.
    Raises: OutboxError if the file is missing or unusable.
    """
    if not path.exists():
        raise OutboxError(f"no outbox at {path} (has `edge run` started with this config?)")
    try:
        return await _status_info(path, chain_id)
    except sqlite3.DatabaseError as e:
        raise OutboxError(f"outbox {path} cannot be read: {e} (corrupt? see PRAGMA quick_check)") from e


async def _status_info(path: Path, chain_id: int | None) -> dict[str, Any]:
    async with Outbox(path) as ob:
        if chain_id is None:
            row = await ob.fetchone("SELECT chain_id FROM cursor ORDER BY updated_at DESC LIMIT 1")
            chain_id = int(row[0]) if row else 0
        cur = await chain_data.get_cursor(ob, chain_id)
        c = await chain_data.counts(ob, chain_id)
        head = cur.head if cur else None
        cursor = cur.block_number if cur else None
        states = dict(await ob.fetchall("SELECT state, count(*) FROM checkpoints WHERE chain_id=? GROUP BY state",
                                        (chain_id,)))
        last = await ob.fetchone("SELECT from_block, to_block FROM checkpoints WHERE chain_id=? AND state='anchored'"
                                 " ORDER BY to_block DESC LIMIT 1", (chain_id,))
        txs = dict(await ob.fetchall("SELECT state, count(*) FROM txs GROUP BY state"))
        by_flag, by_status = await capability_counts(ob)
        signer_set = await current_signers(ob, chain_id)
        alarm = await ob.fetchone("SELECT kind, detail FROM alarms WHERE chain_id=? ORDER BY id DESC LIMIT 1",
                                  (chain_id,))
        return {
            "checkpoints": states,
            "last_anchored": f"blocks {last[0]}..{last[1]}" if last else None,
            "txs": txs,
            "last_alarm": f"{alarm[0]}: {alarm[1]}" if alarm else None,
            "outbox": str(path),
            "chain_id": chain_id,
            "head": head,
            "cursor": cursor,
            "lag": (cur.head - cur.block_number) if cur else None,
            "blocks": c.blocks,
            "confirmed_blocks": c.confirmed_blocks,
            "final_blocks": c.confirmed_blocks,  # deprecated name of confirmed_blocks (kept for scripts)
            "logs": c.logs,
            "contracts": c.contracts,
            "codes": c.codes,
            "scored": c.scored,
            "flagged": c.flagged,
            "alarms": c.alarms,
            "outbox_mb": round(ob.size_bytes() / 2**20, 3),
            "capabilities": {"by_status": by_status, "by_flag": by_flag},
            "clique_signers": None if signer_set is None else {
                "block": signer_set.number, "hash": "0x" + signer_set.hash.hex(), "signers": list(signer_set.signers)},
        }


async def counts_by_state(ob: Outbox) -> dict[str, tuple[tuple[Any, ...], ...]]:
    """Grouped counts for the metrics exporter: ``checkpoints`` and ``anchors`` as
    ``(state, n)``, ``txs`` as ``(chain id, purpose, state, n, total gas)``, ``alarms`` as
    ``(kind, n)``. A table an
    older outbox lacks counts as empty."""
    queries = {
        "checkpoints": "SELECT state, count(*) FROM checkpoints GROUP BY state ORDER BY state",
        "anchors": "SELECT state, count(*) FROM anchors GROUP BY state ORDER BY state",
        "txs": "SELECT chain_id, purpose, state, count(*), coalesce(sum(gas), 0) FROM txs"
               " GROUP BY chain_id, purpose, state ORDER BY chain_id, purpose, state",
        "alarms": "SELECT kind, count(*) FROM alarms GROUP BY kind",
    }
    out: dict[str, tuple[tuple[Any, ...], ...]] = {}
    for name, sql in queries.items():
        try:
            out[name] = tuple(await ob.fetchall(sql))
        except sqlite3.OperationalError:  # a table missing from an older outbox: nothing to count
            out[name] = ()
    return out


async def anchoring_progress(ob: Outbox, up_to_block: int) -> tuple[int, int]:
    """``(checkpoints starting at or below up_to_block not yet anchored, checkpoints anchored)``."""
    open_ = await ob.fetchone("SELECT count(*) FROM checkpoints WHERE from_block <= ? AND state != 'anchored'",
                              (up_to_block,))
    done = await ob.fetchone("SELECT count(*) FROM checkpoints WHERE state = 'anchored'")
    return (int(open_[0]) if open_ else 0), (int(done[0]) if done else 0)


async def code_hashes_by_address(ob: Outbox, chain_id: int) -> dict[bytes, list[bytes]]:
    """Every stored deployment of ``chain_id``: 20-byte address -> its 32-byte code hashes."""
    found: dict[bytes, list[bytes]] = {}
    for a, h in await ob.fetchall("SELECT address, code_hash FROM contracts WHERE chain_id=?", (chain_id,)):
        found.setdefault(bytes(a), []).append(bytes(h))
    return found


def peek(path: Path, what: str) -> dict[str, int]:
    """A read-only look at ANOTHER process's outbox file (blocking; call it in a thread):
    ``what = "checkpoint_states"`` (state -> count), ``"failed_anchors"``
    (``{"failed": n}`` anchor txs refused or reverted), ``"cursor"`` (chain id as
    text -> last block fully written) or ``"codes"`` (``{"codes": n}`` distinct codes
    stored). Returns {} while the file or its schema does not exist yet."""
    queries = {
        "codes": "SELECT 'codes', count(*) FROM codes",
        "cursor": "SELECT chain_id, block_number FROM cursor",
        "checkpoint_states": "SELECT state, count(*) FROM checkpoints GROUP BY state",
        "failed_anchors": "SELECT 'failed', count(*) FROM txs WHERE purpose='anchor' AND state='failed'",
    }
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return {str(k): int(v) for k, v in con.execute(queries[what]).fetchall()}
        finally:
            con.close()
    except sqlite3.Error:
        return {}
