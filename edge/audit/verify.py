"""``edge verify``: what an auditor runs, with no access to the private chain required.

For every ``Anchored`` event of the mainnet Anchor contract:

1. follow the locator to the manifest on the testnets (any replica), decrypt it with the
   auditor's key;
2. fetch the chunks in manifest order, check each against the keccak256 the manifest
   lists (names a changed chunk, and two chunks found in each other's place as swapped),
   decrypt the metadata;
3. check the metadata: its keccak256 is the one the device signed, the signer is a
   device registered in the Anchor contract, the checkpoint id is
   ``keccak256(abi.encode(chainId, from, to, lastBlockHash, root))``, the listed leaves
   hash to the anchored root (names a dropped or changed record), the range and root
   equal the anchored ones; for a batch, the member ids hash to the anchored root;
4. with access to the local chain (``--local``), re-read the range and compare every
   record (key, leaf, CRC-32C) with the metadata.

``--record BLOCK:KIND:TX:INDEX`` (with ``--local``) proves one private-chain record
against its anchored root, off chain and with the contract's ``verifyRecord``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from edge.aio import enter_all
from edge.contracts import anchor as anchor_abi
from edge.contracts.anchor_events import fetch_anchored
from edge.contracts.crud import (PUBLISHED_TOPIC, decode_publication, decode_read, encode_publication, encode_read,
                                 published_value)
from edge.rpc import RpcFactory, eth, open_rpc
from edge.errors import ChainError, CryptoError, EdgeError, RpcError
from edge.evidence.eip712 import checkpoint_id
from edge.evidence.leaves import KIND_NAMES, Leaf, RecordKey
from edge.evidence.manifest_tree import expand_manifest
from edge.evidence.merkle import MerkleTree, verify_proof
from edge.forward.node_errors import classify
from edge.evidence.metadata import Manifest, Metadata, decrypt_manifest, decrypt_metadata, recover_hash_signer

__all__ = ["Verdict", "Auditor", "TestnetRef", "parse_record_key"]

_IS_DEVICE = keccak(b"isDevice(address)")[:4]


@dataclass(frozen=True, slots=True)
class TestnetRef:
    """A testnet the auditor reads: HTTP url, chain id, CrudStore address (20 bytes)."""

    __test__ = False  # not a pytest test class despite its name

    url: str
    chain_id: int
    store: bytes


@dataclass
class Verdict:
    """Result for one checkpoint: OK, or FAIL with the reasons (each names what failed)."""

    id: str
    from_block: int
    to_block: int
    root: str
    kind: str = "checkpoint"
    anchor_id: str = ""
    records: int = 0
    device: str = ""
    signers: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    local_checked: bool = False
    last_block_hash: str = ""

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.reasons

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict with ``ok``; ``last_hash`` repeats ``last_block_hash`` under its
        old key (``edge verify --json`` readers keep working)."""
        return {**asdict(self), "last_hash": self.last_block_hash, "ok": self.ok}


def parse_record_key(s: str) -> RecordKey:
    """Parse ``BLOCK:KIND:TX:INDEX`` (kind ``block``/``contract``/``log``/``signers`` or 0..3)."""
    parts = s.split(":")
    kinds = {name: i for i, name in enumerate(KIND_NAMES)}
    try:
        b, k, t, i = parts
        return RecordKey(int(b), kinds[k] if k in kinds else int(k), int(t), int(i))
    except (ValueError, KeyError):
        raise EdgeError(f"--record {s!r}: expected BLOCK:KIND:TX:INDEX, e.g. 120:log:3:7") from None


_RPC_TIMEOUT_S = 15.0
"""Seconds per JSON-RPC answer."""


class Auditor:
    """Verifies anchored checkpoints. An async context manager (opens HTTP clients).

    Args:
        mainnet_url: HTTP JSON-RPC of mainnet. anchor: 20-byte Anchor address.
        testnets: where the metadata lives. auditor_key: the auditor's 32-byte private key.
        local_ws: WebSocket of the private chain, or None (then records are not re-read).
        local_poa: the ``[poa]`` section used to re-read it (default ``engine = "auto"``: a
            Clique chain is followed as such, so its signer-set changes are recomputed;
            give the chain's ``epoch`` when it is not the default 30000).
        local_verify: the ``ingest.verify`` of that re-read (default ``"strict"``: every
            record's header, receipts and, for code, EIP-1186 account proofs are checked;
            ``"receipts"`` skips the account proofs, which is what a node spends its time
            on; the device's own setting is the natural choice).
        rpc_factory: makes every connection (default :func:`edge.rpc.open_rpc`).

    Entered once (a second ``async with`` on the same auditor raises RuntimeError: make a
    new one).
    """

    def __init__(self, mainnet_url: str, anchor: bytes, testnets: Sequence[TestnetRef], auditor_key: bytes,
                 local_ws: str | None = None, *, rpc_factory: RpcFactory = open_rpc,
                 local_poa: Mapping[str, Any] | None = None, local_verify: str = "strict") -> None:
        self.anchor = anchor
        self.local_verify = local_verify
        self.local_poa = dict(local_poa) if local_poa is not None else {"engine": "auto"}
        self.auditor_key = auditor_key
        self.local_ws = local_ws
        self.rpc_factory = rpc_factory
        self.mainnet = rpc_factory(mainnet_url, timeout=_RPC_TIMEOUT_S)
        self.testnets = {t.chain_id: (t, rpc_factory(t.url, timeout=_RPC_TIMEOUT_S)) for t in testnets}
        self._stack = AsyncExitStack()
        self._devices: dict[str, bool] = {}
        self._entered = False

    async def __aenter__(self) -> Auditor:
        if self._entered:
            raise RuntimeError("an Auditor is entered once; make a new one")
        self._entered = True
        await enter_all(self._stack, [self.mainnet, *(rpc for _, rpc in self.testnets.values())])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def anchored(self) -> list[anchor_abi.AnchoredEvent]:
        """Every ``Anchored`` event of the contract, oldest first (root, signers and
        submitter filled in: :func:`edge.contracts.anchor_events.fetch_anchored`)."""
        return await fetch_anchored(self.mainnet, self.anchor)

    async def verify_all(self) -> list[Verdict]:
        """A :class:`Verdict` per anchored checkpoint (a batch yields one per member)."""
        out: list[Verdict] = []
        for ev in await self.anchored():
            out.extend(await self.verify_anchor(ev))
        return out

    # -- fetching ---------------------------------------------------------------------

    async def read(self, chain_id: int, key: bytes) -> bytes:
        """The blob under ``key`` on testnet ``chain_id``: a published one (``publication``,
        then its ``Published`` log in that block, checked against the stored keccak256:
        :func:`edge.contracts.crud.published_value`), else a created one (``read``: what
        agents before ``publishMany`` uploaded). Raises ChainError (KeyError: an unknown
        testnet)."""
        t, rpc = self.testnets[chain_id]
        try:
            pub = decode_publication(await eth.eth_call(rpc, t.store, encode_publication(key)))
        except RpcError as e:
            if classify(str(e), e.code) != "revert":
                raise  # a node fault, not an answer: the caller names it
            # not published (KeyMissing), or a store from before publishMany: a created value
            return decode_read(await eth.eth_call(rpc, t.store, encode_read(key)))
        logs = await eth.get_logs(rpc, t.store, [PUBLISHED_TOPIC, key, pub.writer.rjust(32, b"\0")],
                                  pub.block, pub.block)
        return published_value(logs, key, pub)

    async def manifest(self, key: bytes) -> Manifest:
        """The manifest under ``key`` (any testnet), with a split one's parts followed
        (:func:`edge.evidence.manifest_tree.expand_manifest`)."""
        m = await self._manifest_root(key)
        try:
            return await expand_manifest(m, self._replica, self.auditor_key)
        except CryptoError as e:
            raise EdgeError(f"manifest 0x{key.hex()[:16]}..: {e}") from e

    async def _replica(self, key: bytes, want: bytes) -> bytes:
        """The blob under ``key`` whose keccak256 is ``want`` (any testnet), else the first
        replica found (the caller names the mismatch)."""
        first: bytes | None = None
        errors = []
        for cid in self.testnets:
            try:
                blob = await self.read(cid, key)
            except ChainError as e:
                errors.append(f"testnet {cid}: {e}")
                continue
            if keccak(blob) == want:
                return blob
            first = blob if first is None else first
        if first is None:
            raise EdgeError(f"manifest part 0x{key.hex()[:16]}.. not readable: " + "; ".join(errors))
        return first

    async def _manifest_root(self, key: bytes) -> Manifest:
        errors = []
        for cid in self.testnets:
            try:
                blob = await self.read(cid, key)
            except ChainError as e:
                errors.append(f"testnet {cid}: {e}")
                continue
            try:
                return decrypt_manifest(self.auditor_key, blob)
            except CryptoError as e:
                errors.append(f"testnet {cid}: manifest does not open: {e}")
        raise EdgeError(f"manifest 0x{key.hex()[:16]}.. not readable: " + "; ".join(errors))

    async def _is_device(self, address: str) -> bool:
        if address not in self._devices:
            res = await eth.eth_call(self.mainnet, self.anchor, _IS_DEVICE + abi_encode(["address"], [address]))
            self._devices[address] = int.from_bytes(res[-32:], "big") == 1 if res else False
        return self._devices[address]

    # -- checks -----------------------------------------------------------------------

    async def verify_anchor(self, ev: anchor_abi.AnchoredEvent) -> list[Verdict]:
        """Verify one anchor (one checkpoint, or each member of a batch)."""
        signers = [str(s) for s in ev.signers]
        root = ev.root or bytes(32)
        try:
            manifest = await self.manifest(ev.locator)
        except EdgeError as e:
            return [Verdict("0x" + ev.id.hex(), ev.from_block, ev.to_block, "0x" + root.hex(),
                            anchor_id="0x" + ev.id.hex(), signers=signers, reasons=[str(e)])]
        if manifest.kind == "checkpoint":
            # the id is checked against the metadata's chain, range, last hash and root
            return [await self._verify_checkpoint(manifest, ev.id, (ev.from_block, ev.to_block, root), signers)]
        out = []
        ids = [i for i, _ in manifest.members]
        batch_reasons = []
        if manifest.id != ev.id:
            batch_reasons.append("batch manifest names another anchor id")
        if MerkleTree(ids).root != root:
            batch_reasons.append("member checkpoint ids do not hash to the anchored batch root")
        for mid, key in manifest.members:
            try:
                m = await self.manifest(key)
                v = await self._verify_checkpoint(m, mid, None, signers)
            except EdgeError as e:
                v = Verdict("0x" + mid.hex(), -1, -1, "", reasons=[str(e)])
            v.kind, v.anchor_id = "batch-member", "0x" + ev.id.hex()
            out.append(v)
        last = out[-1].last_block_hash if out else ""
        if not last or checkpoint_id(ev.chain_id, ev.from_block, ev.to_block, bytes.fromhex(last[2:]),
                                     root) != ev.id:
            batch_reasons.append("anchored batch id is not keccak256(chainId, range, last member's last block "
                                 "hash, root)")
        for v in out:
            v.reasons[:0] = batch_reasons
        return out

    async def _verify_checkpoint(self, manifest: Manifest, cp_id: bytes, anchored: tuple[int, int, bytes] | None,
                                 signers: list[str]) -> Verdict:
        v = Verdict("0x" + cp_id.hex(), anchored[0] if anchored else -1, anchored[1] if anchored else -1,
                    "0x" + anchored[2].hex() if anchored else "", anchor_id="0x" + cp_id.hex(), signers=signers)
        if manifest.id != cp_id:
            v.reasons.append(f"manifest is for checkpoint 0x{manifest.id.hex()[:16]}.., not this one")
        chunks: list[bytes] = []
        for i, ref in enumerate(manifest.chunks):
            try:
                chunks.append(await self.read(ref.chain_id, ref.key))
            except (ChainError, KeyError) as e:
                v.reasons.append(f"chunk {i} (testnet {ref.chain_id}, key 0x{ref.key.hex()[:16]}..) missing: {e}")
                return v
        want = [r.hash for r in manifest.chunks]
        got = [keccak(c) for c in chunks]
        bad = [i for i in range(len(want)) if got[i] != want[i]]
        swapped = [(i, want.index(got[i])) for i in bad if got[i] in want]
        if swapped:
            pairs = sorted({tuple(sorted(p)) for p in swapped})
            v.reasons.append("chunks swapped: " + ", ".join(f"{a} and {b}" for a, b in pairs))
        changed = [i for i in bad if got[i] not in want]
        for i in changed:
            r = manifest.chunks[i]
            v.reasons.append(f"chunk {i} (testnet {r.chain_id}, key 0x{r.key.hex()[:16]}..) was changed: "
                             "its keccak256 differs from the manifest")
        if bad:
            return v
        try:
            md, plain = decrypt_metadata(self.auditor_key, chunks)
        except CryptoError as e:
            v.reasons.append(f"metadata does not decrypt: {e}")
            return v
        v.from_block, v.to_block, v.records, v.device = md.from_block, md.to_block, len(md.records), md.device
        v.last_block_hash = "0x" + md.last_block_hash.hex()
        v.root = v.root or "0x" + md.root.hex()
        self._check_metadata(v, md, plain, manifest, cp_id, anchored)
        if await self._is_device(md.device) is False:
            v.reasons.append(f"metadata signed by {md.device}, which is not a registered device")
        if self.local_ws:
            await self._check_local(v, md)
        return v

    def _check_metadata(self, v: Verdict, md: Metadata, plain: bytes, manifest: Manifest, cp_id: bytes,
                        anchored: tuple[int, int, bytes] | None) -> None:
        if keccak(plain) != manifest.metadata_hash:
            v.reasons.append("metadata hash differs from the one the device signed")
        try:
            signer = recover_hash_signer(manifest.metadata_hash, manifest.device_sig)
            if signer != md.device:
                v.reasons.append(f"metadata signed by {signer}, but it names device {md.device}")
        except CryptoError as e:
            v.reasons.append(str(e))
        if checkpoint_id(md.chain_id, md.from_block, md.to_block, md.last_block_hash, md.root) != cp_id:
            v.reasons.append("checkpoint id does not match the metadata's chain id, range, last hash and root")
        if anchored and (md.from_block, md.to_block, md.root) != anchored:
            if md.root != anchored[2]:
                v.reasons.append(f"anchored root 0x{anchored[2].hex()[:16]}.. differs from the metadata root "
                                 f"0x{md.root.hex()[:16]}..")
            else:
                v.reasons.append("anchored block range differs from the metadata's")
        keys = [r.key.sort_key for r in md.records]
        if keys != sorted(set(keys)):
            v.reasons.append("records are not in strictly increasing key order")
        recomputed = MerkleTree([r.leaf for r in md.records]).root
        if recomputed != md.root:
            v.reasons.append(f"the {len(md.records)} listed records hash to 0x{recomputed.hex()[:16]}.., not to the "
                             f"root 0x{md.root.hex()[:16]}.. (a record was dropped, added or changed)")

    async def _local_leaves(self, chain_id: int, lo: int, hi: int) -> list[Leaf]:
        """Re-read blocks lo..hi from the local chain through the ingest path (its batches
        are sized by the bytes of the answers, so a range of large codes stays under the
        frame limit)."""
        from edge.config import parse_config
        from edge.agent import Agent
        from edge.store.checkpoints import range_leaves

        assert self.local_ws is not None
        with tempfile.TemporaryDirectory() as tmp:
            cfg = parse_config({"node": {"ws_url": self.local_ws, "chain_id": chain_id},
                                "ingest": {"start_block": lo, "confirmations": 0, "verify": self.local_verify},
                                "poa": self.local_poa,
                                "outbox": {"path": str(Path(tmp) / "verify.sqlite")}}, base_dir=Path(tmp))
            async with Agent(cfg, score=False, rpc_factory=self.rpc_factory) as agent:
                await agent.run(stop_at=hi)
                return await range_leaves(agent.outbox, chain_id, lo, hi)

    async def _check_local(self, v: Verdict, md: Metadata) -> None:
        local = {lf.key: lf for lf in await self._local_leaves(md.chain_id, md.from_block, md.to_block)}
        listed = {r.key: r for r in md.records}
        v.local_checked = True
        for k in sorted(set(local) - set(listed), key=lambda k: k.sort_key)[:5]:
            v.reasons.append(f"record {_fmt(k)} is on the local chain but missing from the checkpoint")
        for k in sorted(set(listed) - set(local), key=lambda k: k.sort_key)[:5]:
            v.reasons.append(f"record {_fmt(k)} is in the checkpoint but not on the local chain")
        for k in sorted(set(local) & set(listed), key=lambda k: k.sort_key):
            if local[k].crc != listed[k].crc or local[k].leaf != listed[k].leaf:
                v.reasons.append(f"record {_fmt(k)} differs from the local chain (CRC-32C "
                                 f"{listed[k].crc:08x} listed, {local[k].crc:08x} recomputed)")

    async def prove_record(self, key: RecordKey) -> dict[str, Any]:
        """Prove one local-chain record against its anchored root (needs ``local_ws``)."""
        if not self.local_ws:
            raise EdgeError("--record needs --local (the record is read from the private chain)")
        for ev in await self.anchored():
            if not ev.from_block <= key.block_number <= ev.to_block:
                continue
            manifest = await self.manifest(ev.locator)
            targets = [(ev.id, manifest)] if manifest.kind == "checkpoint" else [
                (mid, await self.manifest(k)) for mid, k in manifest.members]
            for _cp_id, m in targets:
                chunks = [await self.read(r.chain_id, r.key) for r in m.chunks]
                md, _ = decrypt_metadata(self.auditor_key, chunks)
                if not md.from_block <= key.block_number <= md.to_block:
                    continue
                local = [lf for lf in await self._local_leaves(md.chain_id, key.block_number, key.block_number)
                         if lf.key == key]
                if not local:
                    return {"record": _fmt(key), "ok": False, "reason": "no such record on the local chain"}
                leaves = [r.leaf for r in md.records]
                if local[0].leaf not in leaves:
                    return {"record": _fmt(key), "ok": False, "reason": "record's leaf is not in the checkpoint"}
                proof = MerkleTree(leaves).proof(leaves.index(local[0].leaf))
                ok = verify_proof(proof, md.root, local[0].leaf)
                on_chain = None
                if manifest.kind == "checkpoint":
                    res = await eth.eth_call(self.mainnet, self.anchor, anchor_abi.verify_record_call(ev.id, local[0].leaf,
                                                                                                proof))
                    on_chain = int.from_bytes(res[-32:], "big") == 1
                return {"record": _fmt(key), "ok": ok and on_chain is not False, "checkpoint": "0x" + md.id.hex(),
                        "leaf": "0x" + local[0].leaf.hex(), "proof": ["0x" + p.hex() for p in proof],
                        "root": "0x" + md.root.hex(), "verified_on_chain": on_chain}
        return {"record": _fmt(key), "ok": False, "reason": "no anchored checkpoint covers this block"}


def _fmt(k: RecordKey) -> str:
    kind = KIND_NAMES[k.kind] if 0 <= k.kind < len(KIND_NAMES) else str(k.kind)
    return f"{k.block_number}:{kind}:{k.tx_index}:{k.index}"


def run_verify(auditor: Auditor) -> list[Verdict]:
    """Synchronous helper for scripts: verify everything."""

    async def go() -> list[Verdict]:
        async with auditor:
            return await auditor.verify_all()

    return asyncio.run(go())


def print_verdicts(verdicts: Sequence[Verdict], as_json: bool) -> dict[str, int]:
    """Print one line (or JSON object) per checkpoint and a summary; return the summary."""
    for v in verdicts:
        if as_json:
            print(json.dumps(v.as_json(), sort_keys=True))
        else:
            state = "OK  " if v.ok else "FAIL"
            print(f"{state} checkpoint {v.id[:18]}.. blocks {v.from_block}..{v.to_block} {v.records} records"
                  + ("" if v.ok else " -- " + "; ".join(v.reasons)))
    summary = {"checkpoints": len(verdicts), "verify_ok": sum(v.ok for v in verdicts),
               "verify_fail": sum(not v.ok for v in verdicts)}
    print(json.dumps(summary, sort_keys=True) if as_json else
          f"{summary['verify_ok']} OK, {summary['verify_fail']} FAIL of {summary['checkpoints']} checkpoints")
    return summary
