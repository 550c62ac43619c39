"""Checkpoints cut from a real ingested chain: aligned ranges, on-demand cuts, roots
that every device recomputes identically, leaves that match their ABI encodings."""

from __future__ import annotations

from pathlib import Path

from eth_abi.abi import decode as abi_decode
from eth_hash.auto import keccak

from edge.devnet.activity import Activity
from edge.evidence.crc import crc32c
from edge.evidence.eip712 import checkpoint_id
from edge.evidence.leaves import KIND_BLOCK, KIND_CONTRACT, KIND_LOG, encode_log
from edge.evidence.merkle import MerkleTree, verify_proof
from edge.checkpoint.stage import CheckpointStage, request_sync
from edge.store import checkpoints as cps
from edge.store.db import Outbox
from tests.conftest import corpus_codes, ingest_to, make_config


async def _chain_with_activity(chain_factory):  # type: ignore[no-untyped-def]
    chain = await chain_factory(extra_args=("--no-mining",))
    act = Activity(chain)
    await act.setup(mine=True)
    codes = corpus_codes(12)
    for i in range(12):
        await act.deploy(codes[i:i + 1])
        await act.crud_writes(3)
        await chain.rpc("evm_mine")
    await chain.rpc("anvil_mine", "0x10")
    await act.settle()
    return chain, act


async def test_aligned_checkpoints_and_on_demand(chain_factory, tmp_path: Path) -> None:
    chain, _ = await _chain_with_activity(chain_factory)
    head = int(await chain.rpc("eth_blockNumber"), 16)  # 30 blocks + genesis
    db = tmp_path / "edge.sqlite"
    await ingest_to(make_config(chain, db, ingest={"confirmations": 3}), head)
    async with Outbox(db) as ob:
        stage = CheckpointStage(ob, chain.chain_id, every_blocks=8)
        while await stage.step():
            pass
        rows = await ob.fetchall("SELECT from_block, to_block, leaves FROM checkpoints ORDER BY from_block")
        confirmed = head - 3
        assert [(a, b) for a, b, _ in rows] == [(k, k + 7) for k in range(0, confirmed - 7, 8)]
        # on demand: up to the newest confirmed block, then aligned again
        await request_sync(ob)
        assert await stage.step()
        last = await ob.fetchone("SELECT from_block, to_block FROM checkpoints ORDER BY from_block DESC LIMIT 1")
        assert last == (rows[-1][1] + 1, confirmed)
        assert not await stage.step()
        assert (await ob.fetchone("SELECT count(*) FROM sync_requests WHERE done_at IS NULL")) == (0,)


async def test_root_and_id_recomputed_independently(chain_factory, tmp_path: Path) -> None:
    chain, act = await _chain_with_activity(chain_factory)
    head = int(await chain.rpc("eth_blockNumber"), 16)
    # two devices ingest the same chain separately: identical checkpoints
    ids = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.sqlite"
        await ingest_to(make_config(chain, db, ingest={"confirmations": 2, "batch_blocks": 5 if name == "a" else 13}),
                        head)
        async with Outbox(db) as ob:
            stage = CheckpointStage(ob, chain.chain_id, every_blocks=16)
            while await stage.step():
                pass
            ids.append(await ob.fetchall("SELECT id, root, last_block_hash FROM checkpoints ORDER BY from_block"))
    assert ids[0] == ids[1] and len(ids[0]) >= 1

    async with Outbox(tmp_path / "a.sqlite") as ob:
        cp = (await cps.checkpoints_in_state(ob, "sealed"))[0]
        leaves = await cps.range_leaves(ob, chain.chain_id, cp.from_block, cp.to_block)
    kinds = [lf.key.kind for lf in leaves]
    assert kinds.count(KIND_BLOCK) == 16
    assert kinds.count(KIND_CONTRACT) == sum(1 for d in act.deployed.values() if d.block_number <= 15) + 2
    assert kinds.count(KIND_LOG) == sum(1 for b, _ in act.log_keys if b <= 15)
    assert [lf.key.sort_key for lf in leaves] == sorted(lf.key.sort_key for lf in leaves)
    tree = MerkleTree([lf.leaf for lf in leaves])
    assert tree.root == cp.root
    block = await chain.rpc("eth_getBlockByNumber", hex(cp.to_block), False)
    assert cp.last_block_hash == bytes.fromhex(block["hash"][2:])
    assert cp.id == checkpoint_id(chain.chain_id, cp.from_block, cp.to_block, cp.last_block_hash, cp.root)
    for i, lf in enumerate(leaves):
        assert verify_proof(tree.proof(i), cp.root, lf.leaf)

    # a log's leaf is keccak256 of its ABI encoding, rebuilt here from the node's own receipt
    (log_leaf,) = [lf for lf in leaves if lf.key.kind == KIND_LOG][:1]
    n = log_leaf.key.block_number
    blk = await chain.rpc("eth_getBlockByNumber", hex(n), False)
    receipts = await chain.rpc("eth_getBlockReceipts", hex(n))
    raw = next(lg for r in receipts for lg in r["logs"] if int(lg["logIndex"], 16) == log_leaf.key.index)
    enc = encode_log(chain.chain_id, n, bytes.fromhex(blk["hash"][2:]), int(raw["transactionIndex"], 16),
                     int(raw["logIndex"], 16), bytes.fromhex(raw["transactionHash"][2:]),
                     bytes.fromhex(raw["address"][2:]), [bytes.fromhex(t[2:]) for t in raw["topics"]],
                     bytes.fromhex(raw["data"][2:]))
    assert keccak(enc) == log_leaf.leaf and crc32c(enc) == log_leaf.crc
    assert abi_decode(["uint8"], enc[:32]) == (KIND_LOG,)
