"""The ingest path on Clique (EIP-225) chains: headers signed here with known keys
(tests/clique_headers.py), served through MockNetwork (a real node cannot be made to
seal these faults on cue), ingested by the real Ingester into a real outbox.

Checked: the snapshot, signer-set changes, in-turn flags and alarm rows the stage stores
equal what :func:`edge.chain.clique.follow` says over the same headers; votes that add
and drop a signer, an epoch reset, each rule violation an alarm and none a stall; a reorg
across a vote; a start after the genesis; the checkpoint leaves of signer-set changes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.chain.clique import CliqueConfig, CliqueSnapshot, follow
from edge.chain.poa import block_hash
from edge.config import dump_toml, parse_config
from edge.errors import MethodNotSupported
from edge.evidence.leaves import KIND_SIGNERS
from edge.ingest.stage import Ingester
from edge.rpc.mock import MockNetwork
from edge.store import clique as cstore
from edge.store.checkpoints import range_leaves
from edge.store.db import Outbox
from edge.store.status import status_info
from tests.clique_headers import ADDRS, Header, Sealer, genesis

A, B, C = sorted(ADDRS[:3], key=str.lower)
STRANGER = ADDRS[5]
URL = "ws://127.0.0.1:1"
CHAIN_ID = 7202


class Served:
    """A node serving ``chain`` (a list of headers, index = number); swap it for a fork."""

    def __init__(self, chain: list[Header]) -> None:
        self.chain = chain

    def handler(self, method: str, params: list[Any]) -> Any:
        if method == "eth_chainId":
            return hex(CHAIN_ID)
        if method == "eth_blockNumber":
            return hex(len(self.chain) - 1)
        if method == "eth_getBlockByNumber":
            n = int(params[0], 16)
            return {**self.chain[n], "transactions": []} if n < len(self.chain) else None
        if method == "eth_getBlockReceipts":
            return [] if int(params[0], 16) < len(self.chain) else None
        raise MethodNotSupported(method, -32601, f"the method {method} does not exist")


def _cfg(tmp_path: Path, **poa: Any) -> Any:
    return parse_config({"node": {"ws_url": URL, "chain_id": CHAIN_ID}, "ingest": {"confirmations": 2, "batch_blocks": 3},
                         "poa": {"engine": "clique", "period_s": 1, **poa},
                         "outbox": {"path": str(tmp_path / "edge.sqlite")}}, base_dir=tmp_path)


async def _ingest(cfg: Any, ob: Outbox, served: Served, stop_at: int) -> Ingester:
    ing = Ingester(cfg, ob, rpc_factory=MockNetwork({URL: served.handler}, subscriptions=False))
    await ing.run(stop_at=stop_at)
    return ing


def _votes_chain() -> list[Header]:
    """[A, B] -> A and B vote C in (block 2) -> epoch 6 resets a pending drop vote ->
    A and B vote C out (block 9); every block obeys every rule."""
    g = genesis([A, B])
    s = Sealer([A, B], period=1, epoch=6)
    chain = [g]

    def add(addr: str, **kw: Any) -> None:
        chain.append(s.child(chain[-1], addr, **kw))

    add(B, vote=(C, True))   # 1: tally C 1 of 2
    add(A, vote=(C, True))   # 2: 2 > 2/2: C authorized
    s.signers = [A, B, C]
    add(C)                   # 3 (A is in turn but sealed 2)
    add(B, vote=(C, False))  # 4: B votes C out: 1 of 3, not enough
    add(C)                   # 5
    add(A)                   # 6: epoch checkpoint [A, B, C]: B's vote is cleared
    add(B)                   # 7
    add(A, vote=(C, False))  # 8: 1 vote (it would be 2 without the reset)
    add(B, vote=(C, False))  # 9: 2 > 3/2: C dropped
    s.signers = [A, B]
    add(A)                   # 10
    add(B)                   # 11
    add(A)                   # 12: epoch checkpoint [A, B]
    return chain


def _changes(rows: list[cstore.SignerChangeRow]) -> list[tuple[int, str, str | None]]:
    return [(r.block_number, r.kind, "0x" + r.address.hex() if r.address else None) for r in rows]


async def _check_against_follow(ob: Outbox, chain: list[Header], upto: int, config: CliqueConfig) -> None:
    """The stored snapshot, changes, sealers and in-turn flags are those follow() gives."""
    snap, verdicts = follow(None, chain[:upto + 1], config)
    assert snap is not None
    row = await cstore.snapshot_at_or_below(ob, CHAIN_ID, upto)
    assert row is not None and row[0] == upto and CliqueSnapshot.from_bytes(row[2]) == snap
    flags = await cstore.in_turn_flags(ob, CHAIN_ID)
    assert sorted(flags) == list(range(upto + 1))
    for v in verdicts:
        sealer = bytes.fromhex(v.sealer[2:]) if v.sealer else None
        assert flags[v.number] == (sealer, v.authorized, v.in_turn), v.number
    want = [(c.block, c.kind, c.address.lower() if c.address else None) for v in verdicts for c in v.changes]
    assert _changes(await cstore.signer_changes(ob, CHAIN_ID, 0, upto)) == want


async def test_votes_add_and_drop_a_signer_and_the_epoch_resets_votes(tmp_path: Path) -> None:
    chain = _votes_chain()
    cfg = _cfg(tmp_path, epoch=6)
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        ing = await _ingest(cfg, ob, Served(chain), 12)
        await _check_against_follow(ob, chain, 12, CliqueConfig(1, 6))
        assert _changes(await cstore.signer_changes(ob, CHAIN_ID, 0, 12)) == [
            (0, "genesis", None), (2, "authorized", C.lower()), (9, "dropped", C.lower())]
        [added] = await cstore.signer_changes(ob, CHAIN_ID, 2, 2)
        assert added.voters == (bytes.fromhex(B[2:]), bytes.fromhex(A[2:]))
        assert added.signers == tuple(bytes.fromhex(x[2:]) for x in (A, B, C))
        flags = await cstore.in_turn_flags(ob, CHAIN_ID)
        assert [flags[n][2] for n in range(1, 13)] == [int(chain[n]["difficulty"], 16) == 2 for n in range(1, 13)]
        assert await cstore.alarms(ob, CHAIN_ID) == []
        assert (ing.stats.chain_alarms, ing.stats.signer_changes, ing.stats.signers) == (0, 3, 2)
        # the signer-set changes are checkpoint records, in key order after the block's others
        leaves = await range_leaves(ob, CHAIN_ID, 0, 12)
        assert [lf.key.block_number for lf in leaves if lf.key.kind == KIND_SIGNERS] == [0, 2, 9]
        assert [lf.key.sort_key for lf in leaves] == sorted(lf.key.sort_key for lf in leaves)
        assert len(leaves) == 13 + 3
        # snapshots of confirmed blocks are pruned to those at changes (and every 1024th)
        kept = [n for n in range(13) if (await cstore.snapshot_at_or_below(ob, CHAIN_ID, n) or (-1,))[0] == n]
        assert kept == [0, 2, 9, 11, 12]


def _faults_chain() -> list[Header]:
    """[A, B, C], epoch 4: a recent-signer violation (3), a checkpoint that lists [A, B]
    (4), a wrong difficulty (5), a stranger's seal (6), then a clean block (7)."""
    g = genesis([A, B, C])
    s = Sealer([A, B, C], period=1, epoch=4)
    chain = [g]
    chain.append(s.child(chain[-1], B))                     # 1 in turn
    chain.append(s.child(chain[-1], C))                     # 2 in turn
    chain.append(s.child(chain[-1], C))                     # 3 C sealed 2: recently_signed
    chain.append(s.child(chain[-1], B, checkpoint=[A, B]))  # 4 checkpoint omits C
    s.signers = [A, B]
    chain.append(s.child(chain[-1], A, difficulty=2))      # 5 A is out of turn: wrong_difficulty
    chain.append(s.child(chain[-1], STRANGER, difficulty=2))  # 6 unauthorized_signer
    chain.append(s.child(chain[-1], B))                     # 7 clean
    return chain


async def test_each_violation_is_an_alarm_row_naming_block_rule_and_signer_and_none_stalls(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chain = _faults_chain()
    cfg = _cfg(tmp_path, epoch=4, authorities=[A, B, C])
    caplog.set_level(logging.ERROR, "edge.ingest")
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        ing = await _ingest(cfg, ob, Served(chain), 7)
        assert ing.stats.cursor == 7  # no stall
        rows = await cstore.alarms(ob, CHAIN_ID)
        got = [(r.block_number, r.kind, "0x" + r.signer.hex() if r.signer else None) for r in rows]
        assert got == [(3, "recently_signed", C.lower()), (4, "checkpoint_signers_mismatch", B.lower()),
                       (4, "expected_set_mismatch", B.lower()), (5, "wrong_difficulty", A.lower()),
                       (6, "unauthorized_signer", STRANGER.lower())]
        for r in rows:
            assert r.block_hash == bytes.fromhex(chain[r.block_number]["hash"][2:]) == block_hash(chain[r.block_number])
            assert r.detail.startswith(f"block {r.block_number}: {r.kind} (")
        await _check_against_follow(ob, chain, 7, CliqueConfig(1, 4))
        flags = await cstore.in_turn_flags(ob, CHAIN_ID)
        assert flags[6][1] is False and flags[7][1:] == (True, True)
        assert (ing.stats.chain_alarms, ing.stats.foreign_sealers) == (5, 1)
        assert "unauthorized_signer" in ing.stats.last_alarm
    lines = [r.getMessage() for r in caplog.records if "Clique rule broken" in r.getMessage()]
    assert len(lines) == 5 and f"block 6: unauthorized_signer ({STRANGER})" in lines[-1]


def _forks() -> tuple[list[Header], list[Header]]:
    """Fork A votes C in at block 2; fork B replaces block 2 with a block without the vote."""
    g = genesis([A, B])
    s = Sealer([A, B], period=1)
    base = [g, s.child(g, B, vote=(C, True))]
    fork_a = base + [s.child(base[-1], A, vote=(C, True))]
    s.signers = [A, B, C]
    fork_a.append(s.child(fork_a[-1], B))  # 3 out of turn (A sealed 2)
    fork_a.append(s.child(fork_a[-1], C))  # 4 out of turn (B sealed 3)
    s.signers = [A, B]
    fork_b = base + [s.child(base[-1], A, salt=1)]
    for addr in (B, A, B):
        fork_b.append(s.child(fork_b[-1], addr))
    return fork_a, fork_b


async def test_the_stored_snapshot_is_right_after_a_reorg_across_a_vote(tmp_path: Path) -> None:
    fork_a, fork_b = _forks()
    cfg = parse_config({"node": {"ws_url": URL, "chain_id": CHAIN_ID}, "ingest": {"confirmations": 0, "batch_blocks": 2},
                        "poa": {"engine": "clique", "period_s": 1},
                        "outbox": {"path": str(tmp_path / "edge.sqlite")}}, base_dir=tmp_path)
    served = Served(fork_a)
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        ing = Ingester(cfg, ob, rpc_factory=MockNetwork({URL: served.handler}, subscriptions=False))
        await ing.run(stop_at=4)
        assert _changes(await cstore.signer_changes(ob, CHAIN_ID, 0, 4))[-1] == (2, "authorized", C.lower())
        # confirmations 0: the snapshot of block 1 (no change) was pruned; the rollback to it
        # resumes from the genesis' and replays block 1 from the node
        assert (await cstore.snapshot_at_or_below(ob, CHAIN_ID, 1) or (-1,))[0] == 0
        served.chain = fork_b
        await ing.run(stop_at=5)
        assert ing.stats.reorgs == 1 and ing.stats.rolled_back == 3
        await _check_against_follow(ob, fork_b, 5, CliqueConfig(1))
        assert _changes(await cstore.signer_changes(ob, CHAIN_ID, 0, 5)) == [(0, "genesis", None)]
        # the set `edge status` shows went back with the reorg: C's vote is gone
        assert await cstore.current_signers(ob, CHAIN_ID) == cstore.SignerSet(
            5, bytes.fromhex(fork_b[5]["hash"][2:]), (A, B))
        assert await cstore.alarms(ob, CHAIN_ID) == [
            cstore.AlarmRow(2, "deep_reorg", "reorg removed 3 block(s) that were confirmed (ingest.confirmations=0) "
                            "above block 1", None, None)]
    # and a fresh agent restarted on the same outbox goes on from the stored snapshot
    fork_b.append(Sealer([A, B], period=1).child(fork_b[-1], A))
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        await _ingest(cfg, ob, served, 6)
        await _check_against_follow(ob, fork_b, 6, CliqueConfig(1))


async def test_a_start_after_the_genesis_derives_the_same_signer_changes(tmp_path: Path) -> None:
    """start_block 8 (epoch 6): the snapshot of block 7 is rebuilt from the checkpoint at 6,
    so the vote that passes at 9 is seen as from the genesis, and the checkpoint leaves of
    8..12 are the same as a genesis follower's."""
    chain = _votes_chain()
    full, late = tmp_path / "full", tmp_path / "late"
    full.mkdir()
    late.mkdir()
    cfg_full = _cfg(full, epoch=6)
    cfg_late = parse_config({**cfg_full_raw(late), "ingest": {"start_block": 8, "confirmations": 2}}, base_dir=late)
    async with Outbox(cfg_full.resolve(cfg_full.outbox.path)) as ob:
        await _ingest(cfg_full, ob, Served(chain), 12)
        want = await range_leaves(ob, CHAIN_ID, 8, 12)
    async with Outbox(cfg_late.resolve(cfg_late.outbox.path)) as ob:
        await _ingest(cfg_late, ob, Served(chain), 12)
        assert _changes(await cstore.signer_changes(ob, CHAIN_ID, 0, 12)) == [(7, "start", None),
                                                                            (9, "dropped", C.lower())]
        [start] = await cstore.signer_changes(ob, CHAIN_ID, 7, 7)
        assert start.signers == tuple(bytes.fromhex(x[2:]) for x in (A, B, C))
        assert await range_leaves(ob, CHAIN_ID, 8, 12) == want
        assert any(lf.key.kind == KIND_SIGNERS for lf in want)
        snap, _ = follow(None, chain, CliqueConfig(1, 6))
        row = await cstore.snapshot_at_or_below(ob, CHAIN_ID, 12)
        assert snap is not None and row is not None and CliqueSnapshot.from_bytes(row[2]).signers == snap.signers


def cfg_full_raw(d: Path) -> dict[str, Any]:
    return {"node": {"ws_url": URL, "chain_id": CHAIN_ID}, "poa": {"engine": "clique", "period_s": 1, "epoch": 6},
            "outbox": {"path": str(d / "edge.sqlite")}}


async def test_auto_follows_a_clique_genesis_and_aura_genesis_does_not_stall(tmp_path: Path) -> None:
    chain = _votes_chain()
    cfg = _cfg(tmp_path, epoch=6, engine="auto")
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        ing = await _ingest(cfg, ob, Served(chain), 12)
        assert ing.clique.active is True
        await _check_against_follow(ob, chain, 12, CliqueConfig(1, 6))
    # AuRa keeps the generic seal check; its genesis (no seal) is stored, not a stall
    aura = tmp_path / "aura"
    aura.mkdir()
    cfg = _cfg(aura, engine="aura")
    # a made-up header (extraData cleared, hash kept): the header check is off for it
    cfg = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, verify="off"))
    g = {**chain[0], "extraData": "0x"}
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        from edge.agent import make_seal_check

        ing = Ingester(cfg, ob, rpc_factory=MockNetwork({URL: Served([g]).handler}, subscriptions=False),
                       seal_check=make_seal_check(cfg))
        await ing.run(stop_at=0)
        assert ing.stats.cursor == 0 and ing.clique.active is False
        assert (await cstore.in_turn_flags(ob, CHAIN_ID))[0] == (None, None, None)


async def test_the_auditors_local_reread_recomputes_the_signer_change_leaves(tmp_path: Path) -> None:
    """``edge verify --local`` re-reads a checkpoint's range from its first block (engine
    auto, the chain's epoch): the same leaves, signer-set changes included."""
    from edge.audit.verify import Auditor

    chain = _votes_chain()
    cfg = _cfg(tmp_path, epoch=6)
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        await _ingest(cfg, ob, Served(chain), 12)
        want = await range_leaves(ob, CHAIN_ID, 8, 11)
    assert [lf.key.block_number for lf in want if lf.key.kind == KIND_SIGNERS] == [9]
    net = MockNetwork({URL: Served(chain).handler}, subscriptions=False)
    auditor = Auditor("http://127.0.0.1:2", bytes(20), [], bytes(31) + b"\x01", local_ws=URL, rpc_factory=net,
                      local_poa={"engine": "auto", "period_s": 1, "epoch": 6})
    assert await auditor._local_leaves(CHAIN_ID, 8, 11) == want


async def test_status_shows_the_signer_set_of_the_newest_snapshot(tmp_path: Path) -> None:
    """``edge status`` (human and --json): the set after the cursor's block, from the
    stored snapshot; it follows the votes (C in at 2, out at 9)."""
    chain = _votes_chain()
    cfg = _cfg(tmp_path, epoch=6)
    path = cfg.resolve(cfg.outbox.path)
    async with Outbox(path) as ob:
        assert await cstore.current_signers(ob, CHAIN_ID) is None  # nothing ingested yet
        await _ingest(cfg, ob, Served(chain[:6]), 5)
    info = await status_info(path, CHAIN_ID)
    assert info["cursor"] == 5
    assert info["clique_signers"] == {"block": 5, "hash": chain[5]["hash"], "signers": [A, B, C]}
    async with Outbox(path) as ob:
        await _ingest(cfg, ob, Served(chain), 12)
    info = await status_info(path, CHAIN_ID)
    assert info["clique_signers"] == {"block": 12, "hash": chain[12]["hash"], "signers": [A, B]}
    (tmp_path / "edge.toml").write_text(dump_toml({"node": {"ws_url": URL, "chain_id": CHAIN_ID},
                                                   "outbox": {"path": "edge.sqlite"}}))
    # `edge status --json` prints status_info as it is; the human line, from the command itself:
    r = subprocess.run([sys.executable, "-m", "edge", "status", "--config", str(tmp_path / "edge.toml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"clique signers at block 12 (2): {A}, {B}" in r.stdout.splitlines()
    assert json.loads(json.dumps(info))["clique_signers"]["signers"] == [A, B]  # JSON-ready
