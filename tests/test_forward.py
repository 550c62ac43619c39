"""Three tiers on real anvils: checkpoints are uploaded, anchored and verified, and every
kind of tampering is caught and named by `edge verify`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve
import pytest
import pytest_asyncio
from eth_hash.auto import keccak

from edge.contracts import anchor as anchor_abi
from edge.devnet.activity import Activity
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from edge.contracts.crud import encode_publication, encode_publish_many
from edge.rpc import open_rpc
from edge.rpc.base import Call, JsonRpc
from edge.devnet.anvil import DevChains, TierSpec
from edge.devnet.tiers import deploy_public_tiers
from edge.config import Config, dump_toml, load_config
from edge.agent import Agent
from edge.evidence.eip712 import CheckpointMessage, Eip712Domain, sign_checkpoint
from edge.crypto.keys import load_key, read_passphrase
from edge.evidence.metadata import Metadata, decrypt_manifest, decrypt_metadata, encrypt_metadata
from edge.errors import DevChainError
from edge.audit.verify import Auditor, TestnetRef, Verdict, parse_record_key
from tests.conftest import corpus_codes

FAST_TIERS = (TierSpec("poa", 7201, 0.5), TierSpec("testnet-a", 7301, 0.5), TierSpec("testnet-b", 7302, 0.5),
              TierSpec("mainnet", 7401, 0.5))
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Net:
    chains: DevChains
    cfg: Config
    auditor_key: bytes
    device: str
    workdir: Path

    def auditor(self, local: bool = False, lies: Mapping[bytes, bytes] | None = None,
                digest_too: bool = True, local_verify: str = "strict",
                local_methods: list[str] | None = None) -> Auditor:
        """An auditor of the net; with ``lies`` it reads the testnets through
        :class:`LyingTestnet` nodes that serve those values under those keys; the methods
        it asks of the local chain are appended to ``local_methods``."""
        f = self.cfg.forward

        def factory(url: str, *, timeout: float) -> JsonRpc:
            real = open_rpc(url, timeout=timeout)
            if lies and url in {t.url for t in f.testnets}:
                return LyingTestnet(real, lies, digest_too=digest_too)
            if local_methods is not None and url == self.chains["poa"].ws_url:
                return LyingTestnet(real, {}, seen=local_methods)
            return real

        return Auditor(f.mainnet.url, bytes.fromhex(f.mainnet.anchor[2:]),
                       [TestnetRef(t.url, t.chain_id, bytes.fromhex(t.store[2:])) for t in f.testnets],
                       self.auditor_key, local_ws=self.chains["poa"].ws_url if local else None,
                       rpc_factory=factory, local_verify=local_verify)

    async def verdicts(self, local: bool = False, lies: Mapping[bytes, bytes] | None = None,
                       digest_too: bool = True) -> dict[str, Verdict]:
        async with self.auditor(local, lies, digest_too) as a:
            return {v.id: v for v in await a.verify_all()}

    async def as_device(self, chain: str, to: str, data: bytes) -> None:
        """Send a tx from the device's address (anvil impersonation): a compromised device."""
        c = self.chains[chain]
        await c.rpc("anvil_impersonateAccount", self.device)
        h = await c.rpc("eth_sendTransaction", {"from": self.device, "to": to, "data": "0x" + data.hex(),
                                                "gas": hex(8_000_000)})
        (rc,) = await Activity(c).wait([h])
        assert int(rc["status"], 16) == 1


@dataclass
class LyingTestnet:
    """A testnet node that serves other values than the chain holds: published blobs are
    immutable on the store (``publishMany``), so a changed blob can only come from the node
    the auditor asks (or a store that lies), which no real node can be made to do. For each
    key in ``lies`` it rewrites the ``Published`` log's value and, with ``digest_too``, the
    ``publication`` digest to match (a consistent lie); everything else is the real answer.
    Every method asked is appended to ``seen``; ``heads`` and the subscription are the
    inner node's."""

    inner: JsonRpc
    lies: Mapping[bytes, bytes]
    digest_too: bool = True
    seen: list[str] = field(default_factory=list)
    url: str = field(init=False)
    heads: asyncio.Queue[int] = field(init=False)

    def __post_init__(self) -> None:
        self.url, self.heads = self.inner.url, self.inner.heads

    async def __aenter__(self) -> LyingTestnet:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        self.seen.append(method)
        res = await self.inner.call(method, params)
        if method == "eth_call" and self.digest_too:
            data = bytes.fromhex(params[0]["data"][2:])
            forged = self.lies.get(data[4:36])
            if forged is not None and data == encode_publication(data[4:36]):
                writer, block, _ = abi_decode(["address", "uint64", "bytes32"], bytes.fromhex(res[2:]))
                res = "0x" + abi_encode(["address", "uint64", "bytes32"], [writer, block, keccak(forged)]).hex()
        if method == "eth_getLogs":
            for lg in res:
                forged = self.lies.get(bytes.fromhex(lg["topics"][1][2:])) if len(lg["topics"]) > 1 else None
                if forged is not None:
                    lg["data"] = "0x" + abi_encode(["bytes"], [forged]).hex()
        return res

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        if not self.lies:
            self.seen.extend(m for m, _ in calls)
            return await self.inner.batch(calls)
        return [await self.call(m, p) for m, p in calls]

    async def subscribe_heads(self) -> str:
        return await self.inner.subscribe_heads()


async def start_net(workdir: Path, extra: dict[str, Any] | None = None,
                    tiers: tuple[TierSpec, ...] = FAST_TIERS) -> tuple[Net, Activity]:
    chains = DevChains(tiers)
    await chains.__aenter__()
    pub = await deploy_public_tiers(chains, workdir)
    poa = chains["poa"]
    raw = {"node": {"ws_url": poa.ws_url, "chain_id": poa.chain_id},
           "ingest": {"confirmations": 2}, "outbox": {"path": "edge.sqlite"},
           "checkpoint": {"every_blocks": 4}, "metrics": {"port": 0}, **pub.config_for(0)}
    for k, v in (extra or {}).items():
        raw.setdefault(k, {}).update(v)
    (workdir / "edge.toml").write_text(dump_toml(raw))
    act = Activity(poa)
    await act.setup()
    return Net(chains, load_config(workdir / "edge.toml"), pub.auditor_key, pub.device, workdir), act


async def run_until_anchored(cfg: Config, act: Activity, n: int, timeout: float = 120) -> Agent:
    codes = corpus_codes(40)
    async with Agent(cfg, score=False) as agent:
        task = asyncio.create_task(agent.run())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        i = 0
        while agent.forwarder is None or agent.forwarder.stats.checkpoints_anchored < n:
            assert loop.time() < deadline, "not anchored in time"
            if task.done():
                task.result()
            if i < 12:
                await act.deploy(codes[i * 3:i * 3 + 3])
                await act.crud_writes(25)
                await act.settle()
                i += 1
            await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return agent


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    # small chunks: deflated metadata is small, and the tampering tests need >= 2 chunks
    n, act = await start_net(tmp_path_factory.mktemp("three-tiers"), {"forward": {"chunk_bytes": 512}})
    try:
        await run_until_anchored(n.cfg, act, 8)
        yield n
    finally:
        await n.chains.__aexit__(None, None, None)


async def _with_records(net: Net) -> tuple[str, Metadata, Any]:
    """The first anchored checkpoint with >= 20 records in >= 2 chunks, and its manifest."""
    async with net.auditor() as a:
        for ev in await a.anchored():
            cid = "0x" + ev.id.hex()
            man = await a.manifest(ev.locator)
            chunks = [await a.read(r.chain_id, r.key) for r in man.chunks]
            md, _ = decrypt_metadata(net.auditor_key, chunks)
            if len(md.records) >= 20 and len(man.chunks) >= 2:
                return cid, md, (ev, man)
    raise AssertionError("no anchored checkpoint with enough records")


@pytest_asyncio.fixture(loop_scope="module")
async def pristine(net: Net) -> AsyncIterator[Net]:
    """``net`` for a test that tampers with the chains: every chain is snapshotted before
    and reverted after (anvil ``evm_snapshot``/``evm_revert``), so no test sees another's
    tampering and the order of the tests does not matter."""
    snaps = {name: await c.rpc("evm_snapshot") for name, c in net.chains.chains.items()}
    try:
        yield net
    finally:
        for name, c in net.chains.chains.items():
            assert await c.rpc("evm_revert", snaps[name]) is True


async def test_all_anchored_checkpoints_verify_ok_against_local_chain(net: Net) -> None:
    verdicts = await net.verdicts(local=True)
    assert len(verdicts) >= 6
    assert all(v.ok and v.local_checked for v in verdicts.values()), [v.reasons for v in verdicts.values()]
    # every checkpoint the agent cut up to the last anchored one is on mainnet exactly once
    ranges = sorted((v.from_block, v.to_block) for v in verdicts.values())
    assert ranges == [(k, k + 3) for k in range(0, 4 * len(ranges), 4)]


async def test_local_reread_checks_what_local_verify_asks(net: Net) -> None:
    """``edge verify --local-verify receipts``: the re-read of the local chain skips the
    account proofs (what a node spends its time on); strict asks for them."""
    for mode, proofs in (("receipts", False), ("strict", True)):
        seen: list[str] = []
        async with net.auditor(local=True, local_verify=mode, local_methods=seen) as a:
            ev = (await a.anchored())[0]  # blocks 0..3: CrudStore and Spawner are deployed there
            (v,) = await a.verify_anchor(ev)
        assert v.ok and v.local_checked, (mode, v.reasons)
        assert "eth_getBlockReceipts" in seen or "eth_getTransactionReceipt" in seen, mode
        assert ("eth_getProof" in seen) is proofs, (mode, sorted(set(seen)))


async def test_record_inclusion_proof_on_chain(net: Net) -> None:
    cid, md, _ = await _with_records(net)
    log = next(r for r in md.records if r.key.kind == 2)
    async with net.auditor(local=True) as a:
        res = await a.prove_record(parse_record_key(f"{log.key.block_number}:log:{log.key.tx_index}:{log.key.index}"))
    assert res["ok"] is True and res["verified_on_chain"] is True and res["checkpoint"] == cid


async def test_changed_chunk_is_named(net: Net) -> None:
    cid, _, (_, man) = await _with_records(net)
    ref = man.chunks[1]
    async with net.auditor() as a:
        original = await a.read(ref.chain_id, ref.key)
    tampered = {ref.key: bytes([original[0] ^ 1]) + original[1:]}
    # a node that changes the value and the stored digest alike: the manifest names the chunk
    v = (await net.verdicts(lies=tampered))[cid]
    assert not v.ok
    assert any(r.startswith(f"chunk 1 (testnet {ref.chain_id}") and "was changed" in r for r in v.reasons)
    # a node that changes only the value in the log: it no longer matches the store's digest
    v = (await net.verdicts(lies=tampered, digest_too=False))[cid]
    assert not v.ok
    assert any(r.startswith(f"chunk 1 (testnet {ref.chain_id}") and "does not hash to the digest the store keeps"
               in r for r in v.reasons), v.reasons


async def test_two_swapped_chunks_are_named(net: Net) -> None:
    cid, _, (_, man) = await _with_records(net)
    a_ref, b_ref = man.chunks[0], man.chunks[1]
    async with net.auditor() as a:
        a_data, b_data = await a.read(a_ref.chain_id, a_ref.key), await a.read(b_ref.chain_id, b_ref.key)
    v = (await net.verdicts(lies={a_ref.key: b_data, b_ref.key: a_data}))[cid]
    assert "chunks swapped: 0 and 1" in v.reasons


async def test_dropped_record_is_named(pristine: Net) -> None:
    """A compromised device publishes the metadata again with one record left out, and the
    testnet node serves its manifest under the anchored locator (published blobs are
    immutable on the store: only a lying node can swap one)."""
    net = pristine
    cid, md, (ev, man) = await _with_records(net)
    key = load_key(net.workdir / "device.json", read_passphrase(net.cfg.device.passphrase))
    dropped = next(r for r in md.records if r.key.kind == 2)
    forged = Metadata(md.chain_id, md.from_block, md.to_block, md.last_block_hash, md.root, md.id, md.device,
                      tuple(r for r in md.records if r is not dropped), md.findings)
    stores = [(t.chain_id, bytes.fromhex(t.store[2:])) for t in net.cfg.forward.testnets]
    sm = encrypt_metadata(forged, auditors=[coincurve.PrivateKey(net.auditor_key).public_key.format()],
                       device_key=key.private_key, stores=stores, chunk_bytes=2048)
    for t in net.cfg.forward.testnets:
        mine = [c for c in sm.chunks if c.chain_id == t.chain_id]
        await net.as_device(_chain_name(t.chain_id), t.store,
                            encode_publish_many([c.key for c in mine], [c.data for c in mine]))
    assert decrypt_manifest(net.auditor_key, sm.manifest).id == md.id
    # the anchored locator now leads to the forged chunks
    v = (await net.verdicts(local=True, lies={ev.locator: sm.manifest}))[cid]
    assert not v.ok
    assert any("hash to" in r and "a record was dropped, added or changed" in r for r in v.reasons), v.reasons
    k = dropped.key
    assert f"record {k.block_number}:log:{k.tx_index}:{k.index} is on the local chain but missing from the checkpoint" \
        in v.reasons


async def test_different_root_by_foreign_key_is_rejected_and_by_device_is_named(pristine: Net) -> None:
    net = pristine
    cid, md, (ev, _) = await _with_records(net)
    f = net.cfg.forward
    domain = Eip712Domain(f.mainnet.chain_id, f.mainnet.anchor)
    other_root = keccak(b"another root")
    forged = CheckpointMessage.create(md.chain_id, md.from_block, md.to_block, md.last_block_hash, other_root)
    mainnet = net.chains["mainnet"]
    # a key that is not a registered device: the contract refuses it
    rogue = os.urandom(32)
    key = load_key(net.workdir / "device.json", read_passphrase(net.cfg.device.passphrase))
    data = anchor_abi.encode_anchor_raw(forged, ev.locator, anchor_abi.pack_auth(
        [key.address], 1, [(0, sign_checkpoint(rogue, domain, forged))]))
    owner = (await mainnet.rpc("eth_accounts"))[0]
    with pytest.raises(DevChainError, match="revert"):
        await mainnet.rpc("eth_call", {"from": owner, "to": f.mainnet.anchor, "data": "0x" + data.hex()})
    # the (compromised) device itself anchors another root for the same range: named by the auditor
    data = anchor_abi.encode_anchor_call(forged, ev.locator, [sign_checkpoint(key.private_key, domain, forged)],
                                         domain=domain, devices=[key.address], quorum=1)
    await net.as_device("mainnet", f.mainnet.anchor, data)
    v = (await net.verdicts())["0x" + forged.id.hex()]
    assert not v.ok
    assert any("manifest is for checkpoint" in r for r in v.reasons)
    assert any(r.startswith("anchored root 0x" + other_root.hex()[:16]) for r in v.reasons)


def _chain_name(chain_id: int) -> str:
    return {7301: "testnet-a", 7302: "testnet-b", 7401: "mainnet"}[chain_id]


async def test_upload_groups_fit_in_a_transaction() -> None:
    from edge.forward.uploads import UploadBudget, plan_transactions

    budget = UploadBudget.for_block(30_000_000)
    rows = [(i, bytes(32), bytes(2048)) for i in range(20)] + [(-1, bytes(32), bytes(16_537))]
    groups = plan_transactions(rows, budget)
    assert [r for g in groups for r in g] == rows  # nothing lost, order kept
    assert all(budget.fits([len(r[2]) for r in g]) for g in groups)
