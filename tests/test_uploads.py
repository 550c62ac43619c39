"""Uploads that always fit: the gas model against real anvil receipts, the planner, the
manifest tree, and one checkpoint of 10,000 records forwarded and verified end to end on
anvil chains with a 30M block gas limit."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import coincurve
import pytest
import pytest_asyncio
from eth_hash.auto import keccak

from edge.devnet.activity import Activity
from edge.contracts.artifacts import load_artifact
from edge.contracts.crud import encode_create_many, encode_publish_many
from edge.devnet.anvil import DevChain, DevChains, TierSpec
from edge.devnet.tiers import deploy_public_tiers
from edge.config import parse_config
from edge.errors import ChainError, CryptoError, RpcError
from edge.rpc.mock import MockRpc
from edge.forward.uploads import (
    TX_GAS_CAP,
    UploadBudget,
    UploadTooLarge,
    calldata_gas,
    publish_many_gas,
    upload_calldata_len,
    is_size_refusal,
    plan_transactions,
    encrypt_checkpoint_upload,
)
from edge.chain.records import BlockBundle, BlockRecord, LogRecord
from edge.evidence.eip712 import checkpoint_id
from edge.crypto.keys import DeviceKey, load_key, read_passphrase
from edge.evidence.leaves import Leaf, RecordKey
from edge.evidence.manifest_tree import expand_manifest, split_manifest
from edge.evidence.merkle import MerkleTree
from edge.evidence.metadata import ChunkRef, Manifest, Metadata, compress, decompress, decrypt_manifest, decrypt_metadata
from edge.store import chain_data
from edge.store import checkpoints as cps
from edge.store.db import Outbox
from edge.audit.verify import Auditor, TestnetRef
from edge.rpc import open_rpc

AUDITOR = os.urandom(32)
AUDITOR_PUB = coincurve.PrivateKey(AUDITOR).public_key.format()


# ------------------------------------------------------------------ gas model, on anvil


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def testnet() -> AsyncIterator[tuple[DevChain, str, str]]:
    async with DevChain("testnet-a", 7301, 0) as c:
        sender = (await c.rpc("eth_accounts"))[0]
        h = await c.rpc("eth_sendTransaction", {"from": sender, "data": "0x" + load_artifact("CrudStore").bytecode.hex(),
                                                "gas": hex(3_000_000)})
        (rc,) = await Activity(c).wait([h])
        yield c, sender, rc["contractAddress"]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("sizes", [[0], [31], [100], [2048], [2048] * 8, [18_000], [4096] * 3 + [500], [32] * 40])
async def test_publish_many_gas_bounds_the_real_receipt(testnet: tuple[DevChain, str, str], sizes: list[int]) -> None:
    chain, sender, store = testnet
    values = [os.urandom(n) for n in sizes]
    data = encode_publish_many([os.urandom(32) for _ in values], values)
    assert len(data) == upload_calldata_len(sizes)
    planned = publish_many_gas(sizes)
    h = await chain.rpc("eth_sendTransaction", {"from": sender, "to": store, "data": "0x" + data.hex(),
                                                "gas": hex(planned)})
    (rc,) = await Activity(chain).wait([h])
    used = int(rc["gasUsed"], 16)
    assert int(rc["status"], 16) == 1
    standard, floor = calldata_gas(data)
    assert used >= floor  # the EIP-7623 floor is what a node charges at least
    assert used <= planned <= used * 1.15 + 30_000, (sizes, used, planned)


@pytest.mark.asyncio(loop_scope="module")
async def test_auditor_reads_published_and_created_blobs(testnet: tuple[DevChain, str, str]) -> None:
    """The auditor reads a published blob (publication + its log) and one an older agent
    stored (createMany + read); a key never written is an error, and a node fault that is
    not a revert is raised as it is, never taken for a missing key."""
    chain, sender, store = testnet
    published, created = (os.urandom(32), os.urandom(900)), (os.urandom(32), os.urandom(70))
    for data in (encode_publish_many([published[0]], [published[1]]), encode_create_many([created[0]], [created[1]])):
        h = await chain.rpc("eth_sendTransaction", {"from": sender, "to": store, "data": "0x" + data.hex(),
                                                    "gas": hex(2_000_000)})
        (rc,) = await Activity(chain).wait([h])
        assert int(rc["status"], 16) == 1
    ref = TestnetRef(chain.http_url, 7301, bytes.fromhex(store[2:]))
    async with Auditor(chain.http_url, bytes(20), [ref], AUDITOR) as a:
        assert await a.read(7301, published[0]) == published[1]
        assert await a.read(7301, created[0]) == created[1]
        with pytest.raises(ChainError):
            await a.read(7301, os.urandom(32))

    def limited(method: str, params: list[Any]) -> Any:
        raise RpcError(method, -32005, "request rate exceeded")

    mock = MockRpc(limited)
    async with Auditor("mock://", bytes(20), [TestnetRef("mock://", 7301, bytes(20))], AUDITOR,
                       rpc_factory=lambda url, timeout: mock) as a:
        with pytest.raises(RpcError, match="rate exceeded"):
            await a.read(7301, published[0])
    assert [m for m, _ in mock.calls] == ["eth_call"]  # no fallback to read(key)


# ------------------------------------------------------------------------- the planner


def test_budget_follows_the_block_gas_limit_and_the_per_tx_cap() -> None:
    b30 = UploadBudget.for_block(30_000_000)
    assert b30.gas * (1 + b30.margin) <= 15_000_000 + 1
    assert UploadBudget.for_block(60_000_000).gas_limit(10**9) <= TX_GAS_CAP  # EIP-7825
    small = UploadBudget.for_block(2_000_000)
    assert small.max_value_bytes() < b30.max_value_bytes()
    assert b30.fits([b30.max_value_bytes()]) and not b30.fits([b30.max_value_bytes() + 1])
    with pytest.raises(Exception, match="cannot hold"):
        UploadBudget.for_block(50_000)


def test_plan_keeps_order_fits_every_transaction_and_refuses_a_row_too_large() -> None:
    budget = UploadBudget.for_block(30_000_000)
    rows = [(i, os.urandom(32), os.urandom(2048)) for i in range(300)] + [(-1, os.urandom(32), os.urandom(16_537))]
    groups = plan_transactions(rows, budget)
    assert [r for g in groups for r in g] == rows  # nothing lost, order kept
    assert all(budget.fits([len(r[2]) for r in g]) for g in groups)
    assert len(groups) == len(plan_transactions(rows, budget))  # deterministic
    assert len(groups) < len(rows) // 4  # packed, not one row per transaction
    with pytest.raises(UploadTooLarge, match="part -1 of 130000 bytes"):
        plan_transactions([(-1, os.urandom(32), os.urandom(130_000))], budget)


def test_size_refusals_are_told_from_transient_ones() -> None:
    for never in ("intrinsic gas too high -- tx.gas_limit > env.block.gas_limit", "exceeds block gas limit",
                  "oversized data", "gas limit 47300000 exceeds the block gas limit 30000000 of chain 7301",
                  "transaction gas limit too high (cap: 16777216, tx: 20000000)"):
        assert is_size_refusal(never), never
    for transient in ("nonce too low", "replacement transaction underpriced", "execution reverted", None, "",
                      "insufficient funds for gas * price + value", "gas limit reached"):
        assert not is_size_refusal(transient), transient


def test_compression_round_trip_and_refusal_of_garbage() -> None:
    text = b'{"chunks":' + b"[7301,\"1111111111111111111111111111111111111111\"]," * 200 + b"}"
    z = compress(text)
    assert z.startswith(b"EDGZ") and len(z) < len(text) // 10 and decompress(z) == text
    noise = os.urandom(500)
    assert compress(noise) == noise and decompress(noise) == noise  # not shorter: kept as is
    with pytest.raises(CryptoError, match="malformed|truncated"):
        decompress(z[:-8])


async def test_manifest_tree_splits_to_fit_and_expands_back() -> None:
    refs = tuple(ChunkRef(7301 + i % 2, b"\x11" * 20, os.urandom(32), os.urandom(32)) for i in range(3000))
    m = Manifest("checkpoint", os.urandom(32), refs, os.urandom(32), os.urandom(65))
    root, parts = split_manifest(m, [AUDITOR_PUB], 4_500)
    assert len(root) <= 4_500 and all(len(b) <= 4_500 for _, b in parts)
    store = dict(parts)
    top = decrypt_manifest(AUDITOR, root)
    assert top.parts and not top.chunks and top.metadata_hash == m.metadata_hash
    assert any(decrypt_manifest(AUDITOR, b).parts for b in store.values())  # two levels: parts of parts

    async def read(key: bytes, _want: bytes) -> bytes:
        return store[key]

    assert await expand_manifest(top, read, AUDITOR) == m
    # a changed part is named, not silently used
    key = next(k for k, b in store.items() if not decrypt_manifest(AUDITOR, b).parts)
    store[key] = root
    with pytest.raises(CryptoError, match="was changed"):
        await expand_manifest(top, read, AUDITOR)
    small = Manifest("checkpoint", m.id, refs[:3], m.metadata_hash, m.device_sig)
    assert split_manifest(small, [AUDITOR_PUB], 4_500)[1] == ()  # fits whole: no parts


def test_seal_checkpoint_upload_fits_the_budget_and_opens() -> None:
    dev = DeviceKey.from_private_key(os.urandom(32))
    recs = tuple(Leaf(RecordKey(i // 4, 2, i % 4, i), keccak(i.to_bytes(4, "big")), i) for i in range(3000))
    root = MerkleTree([r.leaf for r in recs]).root
    last = os.urandom(32)
    md = Metadata(7201, 0, 800, last, root, checkpoint_id(7201, 0, 800, last, root), dev.address, recs, ())
    budget = UploadBudget.for_block(30_000_000)
    stores = [(7301, b"\x11" * 20), (7302, b"\x22" * 20)]
    locator, items = encrypt_checkpoint_upload(md, auditors=[AUDITOR_PUB], device_key=dev.private_key, stores=stores,
                                            chunk_bytes=2048, max_blob=budget.max_value_bytes())
    for rows in items.values():
        plan_transactions(rows, budget)  # raises if a row fits no transaction
    by_key = {k: d for rows in items.values() for _, k, d in rows}
    man = decrypt_manifest(AUDITOR, by_key[locator])
    assert [k for k, _ in man.parts] == [k for p, k, _ in items[7301] if p < -1]  # replicated on both testnets
    assert [k for p, k, _ in items[7301] if p < 0] == [k for p, k, _ in items[7302] if p < 0]


# --------------------------------------------------- 10,000 records, end to end on anvil


N_RECORDS = 10_000
CHAIN = 7201
TIERS = (TierSpec("testnet-a", 7301, 0.5), TierSpec("testnet-b", 7302, 0.5), TierSpec("mainnet", 7401, 0.5))


def _bundles(n_records: int, per_block: int = 50) -> list[BlockBundle]:
    """Synthetic blocks of ``per_block`` logs each (``n_records`` log records in all)."""
    out = []
    parent = bytes(32)
    for n in range(n_records // per_block):
        h = keccak(b"block" + n.to_bytes(4, "big"))
        logs = tuple(LogRecord(n, i // 5, i, keccak(b"tx" + n.to_bytes(4, "big") + (i // 5).to_bytes(2, "big")),
                               b"\x42" * 20, (keccak(b"Topic()"), i.to_bytes(32, "big")), os.urandom(64))
                     for i in range(per_block))
        out.append(BlockBundle(BlockRecord(n, h, parent, 1_700_000_000 + n, b"\x01" * 20, 10), logs, ()))
        parent = h
    return out


async def _forward_one(chains: DevChains, tmp_path: Path, n_records: int,
                       before_run: Callable[[], Awaitable[None]] | None = None) -> tuple[Outbox, Any, str, Any]:
    """Store ``n_records`` synthetic log records as one sealed checkpoint in a fresh outbox,
    run the forward stage (``before_run`` after its first pass queued the uploads) until
    the checkpoint is anchored; returns the closed outbox, the stage, the checkpoint id and
    the public tiers."""
    from edge.forward.stage import ForwardStage

    pub = await deploy_public_tiers(chains, tmp_path)
    raw: dict[str, Any] = {"node": {"ws_url": "ws://127.0.0.1:1", "chain_id": CHAIN},
                           "outbox": {"path": "edge.sqlite"}, **pub.config_for(0)}
    raw["forward"] = {**raw["forward"], "confirmations": 1}
    cfg = parse_config(raw, base_dir=tmp_path)
    key = load_key(cfg.resolve(cfg.device.keystore), read_passphrase(cfg.device.passphrase))
    bundles = _bundles(n_records)
    last_block = len(bundles) - 1
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        await chain_data.write_blocks(ob, CHAIN, bundles, head=last_block + 100, confirmations=5)
        leaves = await cps.range_leaves(ob, CHAIN, 0, last_block)
        assert len(leaves) == n_records + len(bundles)
        root = MerkleTree([lf.leaf for lf in leaves]).root
        last = bundles[-1].block.hash
        cid = checkpoint_id(CHAIN, 0, last_block, last, root)
        async with ob.transaction() as tx:
            await cps.insert_checkpoint(tx, cps.CheckpointRow(cid, CHAIN, 0, last_block, last, root, len(leaves),
                                                              "sealed", None, None))
        async with ForwardStage(cfg, ob, key, CHAIN, poll_s=0.2, rpc_factory=open_rpc) as fwd:
            assert await fwd.step()  # sealed -> uploading: every upload queued, none sent yet
            if before_run is not None:
                await before_run()
            task = asyncio.create_task(fwd.run())
            try:
                while fwd.stats.checkpoints_anchored < 1:
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.2)  # polling the stage's own counter (no timing assumption)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        txs = await ob.fetchall("SELECT purpose, state, gas, error, chain_id, data FROM txs")
        alarms = await ob.fetchall("SELECT kind, detail FROM alarms")
    return ob, (fwd, txs, alarms), "0x" + cid.hex(), pub


async def _verify(pub: Any) -> tuple[Any, Any]:
    f = pub.sections["forward"]
    auditor = Auditor(f["mainnet"]["url"], bytes.fromhex(f["mainnet"]["anchor"][2:]),
                      [TestnetRef(t["url"], t["chain_id"], bytes.fromhex(t["store"][2:])) for t in f["testnets"]],
                      pub.auditor_key)
    async with auditor:
        (ev,) = await auditor.anchored()
        top = await auditor._manifest_root(ev.locator)
        (v,) = await auditor.verify_all()
    return top, v


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="function")
async def test_checkpoint_of_10000_records_is_forwarded_and_verified(tmp_path: Path) -> None:
    async with DevChains(TIERS) as chains:
        for name in ("testnet-a", "testnet-b"):
            blk = await chains[name].rpc("eth_getBlockByNumber", "latest", False)
            assert int(blk["gasLimit"], 16) == 30_000_000
        _, (fwd, txs, alarms), cid, pub = await _forward_one(chains, tmp_path, N_RECORDS)
        assert fwd.stats.failures == 0 and alarms == []
        assert all(state == "confirmed" for _, state, *_ in txs), txs
        uploads = [gas for purpose, _, gas, *_ in txs if purpose == "upload"]
        assert len(uploads) > 2 and max(uploads) <= 15_000_000  # many transactions, each within its share
        # every block on chain held what it was given (nothing over the limit was ever mined)
        for name in ("testnet-a", "testnet-b"):
            head = int(await chains[name].rpc("eth_blockNumber"), 16)
            for n in range(head + 1):
                blk = await chains[name].rpc("eth_getBlockByNumber", hex(n), False)
                assert int(blk["gasUsed"], 16) <= 30_000_000
        _, v = await _verify(pub)
    assert v.ok, v.reasons
    assert v.records == N_RECORDS + N_RECORDS // 50 and v.id == cid


SHRUNK = 600_000
"""testnet-b's block gas limit after the shrink: about 6 KB of value per upload transaction."""


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="function")
async def test_a_block_gas_limit_that_shrinks_is_an_alarm_and_a_replan(tmp_path: Path) -> None:
    """Uploads planned for 30M blocks; testnet-b's limit drops to 600k before they are sent:
    the refusal is an alarm, the checkpoint is re-encrypted into smaller pieces (never the same
    bytes again), its manifest split into parts (a manifest of manifests), and then anchored
    and verified."""
    async with DevChains(TIERS) as chains:
        async def shrink() -> None:
            await chains["testnet-b"].rpc("evm_setBlockGasLimit", hex(SHRUNK))
            await chains["testnet-b"].rpc("evm_mine")

        _, (fwd, txs, alarms), cid, pub = await _forward_one(chains, tmp_path, 2_000, shrink)
        blk = await chains["testnet-b"].rpc("eth_getBlockByNumber", "latest", False)
        assert int(blk["gasLimit"], 16) == SHRUNK
        top, v = await _verify(pub)
    assert top.parts, "the manifest is split into parts to fit the shrunk blocks"
    refused = [(cid_, bytes(data), err) for _, state, _, err, cid_, data in txs if state == "failed"]
    assert refused and all(c == 7302 and is_size_refusal(err) for c, _, err in refused), refused
    assert [k for k, _ in alarms] and all(k == "upload_too_large" for k, _ in alarms)
    assert any("re-encrypted" in d for _, d in alarms)
    # the refused bytes are never sent again; what testnet-b confirmed fits its new limit
    confirmed = [(gas, bytes(data)) for purpose, state, gas, _, c, data in txs
                 if purpose == "upload" and state == "confirmed" and c == 7302]
    assert confirmed and all(gas <= SHRUNK for gas, _ in confirmed)
    assert not {d for _, d, _ in refused} & {d for _, d in confirmed}
    assert v.ok, v.reasons
    assert v.id == cid and v.records == 2_000 + 40
