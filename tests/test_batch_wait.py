"""``forward.batch_max_wait_s``: a batch is cut at K ready checkpoints or once its oldest
member has waited that long (a partial batch is anchored and verifiable like a full one).
The clock is injected: no test waits for real time to pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edge.contracts import anchor as anchor_abi
from edge.devnet.anvil import DevChains
from edge.devnet.tiers import deploy_public_tiers
from edge.config import parse_config
from edge.errors import ConfigError, EdgeError
from edge.forward.batching import cut_batches
from edge.evidence.eip712 import checkpoint_id
from edge.crypto.keys import load_key, read_passphrase
from edge.evidence.merkle import MerkleTree
from edge.store import chain_data
from edge.store import checkpoints as cps
from edge.store.db import Outbox
from edge.audit.verify import Auditor, TestnetRef
from edge.clock import SystemClock
from edge.rpc import eth, open_rpc
from tests.test_uploads import CHAIN, TIERS, _bundles


def test_cut_batches_full_then_partial_after_the_wait() -> None:
    ready = list("abcdefg")
    born = [100.0, 101, 102, 103, 104, 105, 106]
    assert cut_batches(ready, born, 3, 60, now=150) == [["a", "b", "c"], ["d", "e", "f"]]  # g waited 44 s
    assert cut_batches(ready, born, 3, 60, now=166) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert cut_batches(ready[:2], born[:2], 32, 60, now=159.9) == []
    assert cut_batches(ready[:2], born[:2], 32, 60, now=160) == [["a", "b"]]  # the oldest decides
    assert cut_batches(ready, born, 1, 10**9, now=0) == [[x] for x in ready]  # K = 1: never waits
    assert cut_batches([], [], 4, 0, now=0) == []
    with pytest.raises(EdgeError):
        cut_batches(ready, born[:1], 3, 60, now=0)


def test_config_batch_max_wait_s() -> None:
    base = {"node": {"ws_url": "ws://127.0.0.1:1", "chain_id": 7}}
    assert parse_config(base, base_dir=Path(".")).forward.batch_max_wait_s == 300.0
    fwd = {"enabled": True, "auditors": ["02" + "11" * 32], "batch_max_wait_s": -1,
           "testnets": [{"url": "http://127.0.0.1:1", "chain_id": 1, "store": "0x" + "11" * 20}],
           "mainnet": {"url": "http://127.0.0.1:2", "chain_id": 2, "anchor": "0x" + "22" * 20}}
    with pytest.raises(ConfigError, match="forward.batch_max_wait_s"):
        parse_config({**base, "forward": fwd}, base_dir=Path("."))


async def _until(cond: Callable[[], Awaitable[bool]], step: Callable[[], Awaitable[Any]], what: str,
                 timeout: float = 90) -> None:
    """Drive ``step`` until ``cond`` holds (each pass waits for the chain to move on)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, what
        await step()
        await asyncio.sleep(0.2)  # let the tx senders' own loops run between passes


@pytest.mark.asyncio(loop_scope="function")
class ShiftedClock(SystemClock):
    """The system clock, whose wall time (``time()``) is frozen at creation and moves only
    by :meth:`shift`; sleeps and monotonic time stay real (the tx senders run for real)."""

    def __init__(self) -> None:
        self._wall = time.time()

    def time(self) -> float:
        return self._wall

    def shift(self, seconds: float) -> None:
        self._wall += seconds


async def test_quiet_chain_partial_batch_is_anchored_after_the_wait(tmp_path: Path) -> None:
    from edge.forward.stage import ForwardStage

    async with DevChains(TIERS) as chains:
        pub = await deploy_public_tiers(chains, tmp_path)
        raw: dict[str, Any] = {"node": {"ws_url": "ws://127.0.0.1:1", "chain_id": CHAIN},
                               "outbox": {"path": "edge.sqlite"}, **pub.config_for(0)}
        raw["forward"] = {**raw["forward"], "confirmations": 1, "batch": 32, "batch_max_wait_s": 60}
        cfg = parse_config(raw, base_dir=tmp_path)
        key = load_key(cfg.resolve(cfg.device.keystore), read_passphrase(cfg.device.passphrase))
        bundles = _bundles(30, per_block=2)  # 15 blocks: 3 checkpoints of 5 blocks, then the chain is quiet
        async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
            await chain_data.write_blocks(ob, CHAIN, bundles, head=100, confirmations=5)
            ids = []
            for lo in (0, 5, 10):
                leaves = await cps.range_leaves(ob, CHAIN, lo, lo + 4)
                root = MerkleTree([lf.leaf for lf in leaves]).root
                last = bundles[lo + 4].block.hash
                ids.append(checkpoint_id(CHAIN, lo, lo + 4, last, root))
                async with ob.transaction() as tx:
                    await cps.insert_checkpoint(tx, cps.CheckpointRow(ids[-1], CHAIN, lo, lo + 4, last, root,
                                                                      len(leaves), "sealed", None, None))
            # the injected clock's wall time starts when the last checkpoint was cut and moves
            # only when the test says (waits stay real)
            clock = ShiftedClock()
            async with ForwardStage(cfg, ob, key, CHAIN, poll_s=0.2, clock=clock, rpc_factory=open_rpc) as fwd:

                async def state(s: str) -> int:
                    return len(await cps.checkpoints_in_state(ob, s, CHAIN))

                async def n_anchors() -> int:
                    row = await ob.fetchone("SELECT count(*) FROM anchors")
                    return int(row[0]) if row else 0

                async with asyncio.TaskGroup() as tg:
                    senders = [tg.create_task(s.run(0.2)) for s in [*fwd.senders.values(), fwd.mainnet]]
                    try:
                        async def all_uploaded() -> bool:
                            return await state("uploaded") == 3

                        await _until(all_uploaded, fwd.step, "the 3 checkpoints were not uploaded")
                        # 3 of K = 32 ready, the oldest cut moments ago: no batch yet
                        assert not await fwd.step() and await n_anchors() == 0
                        clock.shift(59.0)
                        assert not await fwd.step() and await n_anchors() == 0
                        clock.shift(1.5)  # the oldest has now waited 60 s: the partial batch is cut
                        assert await fwd.step() and await n_anchors() == 1

                        async def anchored() -> bool:
                            return fwd.stats.checkpoints_anchored == 3

                        await _until(anchored, fwd.step, "the partial batch was not anchored")
                    finally:
                        for t in senders:
                            t.cancel()
        f = pub.sections["forward"]
        auditor = Auditor(f["mainnet"]["url"], bytes.fromhex(f["mainnet"]["anchor"][2:]),
                          [TestnetRef(t["url"], t["chain_id"], bytes.fromhex(t["store"][2:])) for t in f["testnets"]],
                          pub.auditor_key)
        async with auditor:
            (ev,) = await auditor.anchored()
            verdicts = await auditor.verify_all()
            tree = MerkleTree(ids)
            on_chain = [anchor_abi.decode_bool(await eth.eth_call(auditor.mainnet,
                auditor.anchor, anchor_abi.verify_member_call(ev.id, mid, tree.proof(i)))) for i, mid in enumerate(ids)]
    assert ev.root == tree.root and (ev.from_block, ev.to_block) == (0, 14)
    assert [v.id for v in verdicts] == ["0x" + i.hex() for i in ids]
    assert all(v.ok and v.kind == "batch-member" for v in verdicts), [v.reasons for v in verdicts]
    assert on_chain == [True, True, True]  # Anchor.verifyMember of every member


def test_fleet_batch_is_cut_from_chain_time_alone() -> None:
    from edge.forward.batching import fleet_batch

    # last-block timestamps of the next checkpoints (seconds, from the chain)
    assert fleet_batch([100, 102, 104, 106], k=3, max_wait_s=60) == 3  # full
    assert fleet_batch([100, 102], k=3, max_wait_s=60) is None  # not closed: may still grow
    assert fleet_batch([100, 130, 161], k=3, max_wait_s=60) == 2  # 161 is past the deadline
    assert fleet_batch([100, 160], k=8, max_wait_s=60) == 1  # a batch of one
    assert fleet_batch([100], k=1, max_wait_s=0) == 1
    assert fleet_batch([], k=4, max_wait_s=60) is None
    # every device computes the same cut from the same chain, whatever its own clock
    same = [fleet_batch([5, 9, 70, 71], k=4, max_wait_s=60) for _ in range(3)]
    assert same == [2, 2, 2]
    with pytest.raises(EdgeError):
        fleet_batch([1], k=0, max_wait_s=1)
