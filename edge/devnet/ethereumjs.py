"""Real Clique sealers: the EthereumJS client (npm ``@ethereumjs/client`` 0.10.5) on loopback.

:class:`EthereumJSNet` is an async context manager that writes a geth-style Clique
genesis (:func:`clique_genesis`, EIP-225 extraData = 32 zero bytes ‖ sorted signers ‖
65 zero bytes), creates a network namespace (:class:`edge.devnet.netns.NetNamespace`)
and starts one sealer node per key in it (``--mine --unlock KEYFILE``). On exit it kills
every node's process group and deletes the namespace. Nodes are started from the event
loop's thread with ``PR_SET_PDEATHSIG`` (SIGKILL when the parent dies; the signal is tied
to the thread that forked, which is why no worker thread starts a node) in a new session,
so no node outlives the test or the demo, even when the parent is SIGKILLed.

Nothing may leave loopback (house rule): every node gets ``--discDns false --discV4 false
--dnsAddr 127.0.0.1 --extIP 127.0.0.1``, RPC and WS on 127.0.0.1, and runs in a namespace
that has nothing but ``lo``. 0.10.5 binds RLPx (TCP) and its discovery socket (UDP) to
``0.0.0.0`` whatever the flags say (``rlpxserver.js``: ``listen(port, '0.0.0.0')``) and its
WS server to every address (``startRPC.js``: ``listen(wsPort)``); a preload script
(:data:`LOOPBACK_PRELOAD`, ``node --require``) rebinds every wildcard listen/bind of the
process to 127.0.0.1, so that even inside the namespace no port is bound elsewhere.

The agent reaches a node at ``ws_url`` only from inside the namespace: the tests run
``edge run`` as ``ip netns exec NAME python -m edge run ...`` (the simplest robust way: the
agent is unchanged and cannot reach anything but the namespace's loopback). The launcher
itself calls the nodes' HTTP JSON-RPC through sockets made inside the namespace
(:meth:`EthereumJSNet.rpc`).

What 0.10.5 can and cannot do here (measured; see ``field-notes.md``): it seals empty
Clique blocks at the configured period; its block builder drops every transaction; its
RPC has no ``eth_subscribe`` (an agent must poll), no ``trace_block`` and no
``debug_traceBlockByNumber``.

Multi-sealer networks (investigated for issue 12): two sealers converge when the one in
turn for block 1 starts first and the other joins with that block preloaded (what
``join_at_block`` does); three or more do not. What was tried, and why, is in
:data:`CONVERGENCE_NOTES`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from eth_keys.datatypes import PrivateKey

from edge.devnet.netns import NetNamespace
from edge.devnet.process import LoopbackUrls, StartStop, kill_process, spawn, wait_until_answers
from edge.errors import DevChainError

__all__ = [
    "CONVERGENCE_NOTES",
    "LOOPBACK_PRELOAD",
    "EthereumJSNet",
    "EthereumJSNode",
    "clique_genesis",
    "ethereumjs_cli",
]

log = logging.getLogger("edge.devnet.ethereumjs")

_REPO = Path(__file__).resolve().parents[2]
_RPC_BASE: Final = 8545
_WS_BASE: Final = 8645
_RLPX_BASE: Final = 30303

CONVERGENCE_NOTES: Final = """\
What makes several EthereumJS 0.10.5 Clique sealers converge (tried 2026-12, Node.js 20,
loopback in a network namespace, period 1-2 s):

Tried:
1. 3 sealers, sequential start, later nodes get the earlier enodes as --bootnodes,
   period 2: all peered (net_peerCount 2), each sealed its own block 1 (node 0 before the
   others had started), none adopted another's; all stuck at block 1 ("Miner: We have
   too recently signed, waiting for next block") for 40+ s.
2. 3 sealers started together, then admin_addPeer (it takes {"address", "tcpPort",
   "udpPort"}, not an enode URL), period 2: two had sealed block 1 before peering; one
   node built block 2 on another's block 1, the third never imported that child; stuck.
3. 3 sealers started 5 s apart, the one in turn for block 1 first: heads 3/2/2 on
   different forks, no progress for 65 s.
4. 2 sealers, the one in turn for block 1 first; the second started only after the first
   had sealed block 1 (--bootnodes): converged in 9 of 9 runs, but slowly: the second
   seals its own out-of-turn block 1 before it syncs, then imports the heavier in-turn
   block 1 ("Imported blocks count=1 first=1 last=1 ...", a reorg) 3 to 24 s later; from
   then on the two alternate, every block in turn, also through a SIGKILL and restart of
   a sealer. Same with and without --isSingleNode.
5. As 4, but the second sealer starts with the first one's blocks preloaded
   (debug_getRawBlock on the first, then --loadBlocksFromRlp): it never seals a block 1
   of its own, seals block 2 in turn about 1 s after it starts; no reorg, no wait (7 of
   7 runs). This is what the launcher does (join_at_block). With 3 sealers the same start ran together
   for 9 blocks (in and out of turn), then the third sealed a sibling of block 10 and was
   left on it for good while the other two went on (a 2-of-3 majority): not converged.
   Restarting such a node makes it handshake again with the heavier peer and sync back;
   that is a repair, not convergence.
(A genesis timestamp in the future keeps every node at block 0: field notes; the
launcher uses now - 60 s.)

Why (0.10.5 sources, dist/esm/src/sync/fullsync.js, miner/miner.js):
- the miner starts with the service, before any peer is known: each sealer seals its
  own block 1;
- best() picks a sync peer by the total difficulty it sent in its STATUS handshake and
  never updates it: once a node's own TD passes a peer's handshake TD it never syncs
  from that peer again (so a second sealer that connects before the first has sealed
  never adopts its fork: the failure in the field notes);
- handleNewBlock imports only a child of the current tip; a sibling at the tip height is
  dropped (handleNewBlockHashes acts only on higher numbers, and only while a fetcher
  runs), so gossip never resolves a fork at equal height;
- a new block goes whole (NewBlock) to floor(sqrt(peers)) peers, the others only get
  NewBlockHashes, ignored without a running fetcher: with 3 nodes (2 peers each) a block
  does not reach every node.
With 2 sealers (one peer each; floor(2/2)+1 = 2 leaves no out-of-turn slot, so no
sibling races) the chain converges once the second sealer knows the first one's block 1
(preloaded, or synced from a heavier handshake); with 3 or more it does not. Multi-sealer cases this client cannot carry
(3 sealers in and out of turn, partitions, reorgs across votes) are covered by headers
signed in tests/clique_headers.py.
"""
"""What was tried to make several sealers converge, what happened, and why."""

LOOPBACK_PRELOAD: Final = r"""'use strict';
// edge: bind every listening socket of this process to 127.0.0.1. EthereumJS 0.10.5 binds
// RLPx and its discovery socket to 0.0.0.0 and its WS server to every address.
const net = require('net');
const dgram = require('dgram');
const WILD = new Set([undefined, null, '', '0.0.0.0', '::', '::0']);
const LO = '127.0.0.1';
function fix(args) {
  const a0 = args[0];
  if (a0 !== null && typeof a0 === 'object' && !Array.isArray(a0) && 'port' in a0) {
    const host = 'host' in a0 ? a0.host : a0.address;
    if (WILD.has(host)) args[0] = Object.assign({}, a0, { host: LO, address: LO });
  } else if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    if (typeof args[1] === 'string' || args[1] === undefined || args[1] === null) {
      if (WILD.has(args[1])) args[1] = LO;
    } else {
      args.splice(1, 0, LO);
    }
  }
  return args;
}
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) { return listen.apply(this, fix(args)); };
const bind = dgram.Socket.prototype.bind;
dgram.Socket.prototype.bind = function (...args) { return bind.apply(this, fix(args)); };
"""
"""The ``node --require`` preload that rebinds wildcard listens to 127.0.0.1."""


def ethereumjs_cli() -> str:
    """Path of the EthereumJS client's CLI script (run with ``node``).

    Order: ``$EDGE_ETHEREUMJS``; the pinned ``@ethereumjs/client`` in the project's
    ``node_modules`` (``make setup`` installs it). Raises DevChainError (with how to
    install) if none.
    """
    env = os.environ.get("EDGE_ETHEREUMJS")
    if env:
        if not os.path.isfile(env):
            raise DevChainError(f"EDGE_ETHEREUMJS={env} is not a file")
        return env
    for base in (_REPO, Path.cwd()):
        cand = base / "node_modules" / "@ethereumjs" / "client" / "dist" / "esm" / "bin" / "cli.js"
        if cand.is_file():
            return str(cand)
    raise DevChainError("EthereumJS client not found: run `make setup` (installs the pinned "
                        "@ethereumjs/client into node_modules/) or set EDGE_ETHEREUMJS to its bin/cli.js")


def clique_genesis(
    chain_id: int,
    signers: Sequence[str],
    *,
    period: int = 1,
    epoch: int = 30000,
    timestamp: int | None = None,
    alloc: dict[str, int] | None = None,
    gas_limit: int = 30_000_000,
) -> dict[str, Any]:
    """A geth-style genesis (``--gethGenesis``) for a Clique chain, all forks to London at 0.

    Args:
        chain_id: the chain id. signers: the initial sealers (0x addresses, any case).
        period: seconds between blocks (EIP-225 BLOCK_PERIOD). epoch: checkpoint interval.
        timestamp: genesis time, seconds (default: now - 60; a future genesis keeps
            EthereumJS at block 0). alloc: balances in wei per address.
        gas_limit: the genesis gas limit.

    Returns:
        the genesis as a JSON-ready dict; ``extraData`` = 32 zero bytes ‖ sorted signers
        ‖ 65 zero bytes (EIP-225).

    Raises:
        ValueError: no signer, or a signer that is not a 20-byte 0x address.
    """
    if not signers:
        raise ValueError("a Clique genesis needs at least one signer")
    body = ""
    for s in sorted(a.lower() for a in signers):
        if len(s) != 42 or not s.startswith("0x") or any(c not in "0123456789abcdef" for c in s[2:]):
            raise ValueError(f"not a 20-byte 0x address: {s!r}")
        body += s[2:]
    forks = ("homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople", "petersburg",
             "istanbul", "berlin", "london")
    config: dict[str, Any] = {"chainId": chain_id, **{f"{f}Block": 0 for f in forks},
                              "clique": {"period": period, "epoch": epoch}}
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": hex(int(time.time()) - 60 if timestamp is None else timestamp),
        "extraData": "0x" + "00" * 32 + body + "00" * 65,
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "mixHash": "0x" + "00" * 32,
        "coinbase": "0x" + "00" * 20,
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
        "baseFeePerGas": hex(1_000_000_000),
        "alloc": {a.lower(): {"balance": hex(v)} for a, v in (alloc or {}).items()},
    }


@dataclass
class EthereumJSNode(LoopbackUrls):
    """One sealer node of an :class:`EthereumJSNet` (its ports are inside the namespace:
    ``http_url`` and ``ws_url`` are reachable from inside the namespace only).

    Attributes:
        index: position in the net. key: the sealer's private key.
        rpc_port, ws_port, rlpx_port: 127.0.0.1 ports inside the namespace.
        data_dir, log_path: its files. enode: its ``enode://`` URL once started.
    """

    index: int
    key: PrivateKey
    rpc_port: int
    ws_port: int
    rlpx_port: int
    data_dir: Path
    log_path: Path
    enode: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """The sealer's EIP-55 address."""
        return str(self.key.public_key.to_checksum_address())

    @property
    def ports(self) -> tuple[int, int]:
        """``(rpc_port, ws_port)``."""
        return self.rpc_port, self.ws_port

    @property
    def running(self) -> bool:
        """Whether its process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        """The end of its log (for error messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


Peering = Literal["bootnodes", "addPeer", "none"]


class EthereumJSNet(StartStop):
    """N EthereumJS Clique sealers in one network namespace. An async context manager.

    Args:
        workdir: a directory for the genesis, keys, data and logs (created).
        keys: one private key per sealer (all in the genesis signer set).
        chain_id: the chain id. period: seconds per block (EIP-225). epoch: checkpoint interval.
        netns: the namespace name (default ``edge-ejs-<pid>``); created and deleted here.
        genesis_time: genesis timestamp (default now - 60 s).
        peering: how nodes find each other: ``"bootnodes"`` (every node after the first
            gets the earlier nodes' enodes), ``"addPeer"`` (``admin_addPeer`` after start),
            ``"none"``. A single node always runs with ``--isSingleNode``.
        single_node: pass ``--isSingleNode`` to every node (default: only when there is one).
        join_at_block: the other nodes start once node 0 has this block (0: at once). The
            default 1 is what makes two sealers converge (see :data:`CONVERGENCE_NOTES`):
            node 0 should be the one in turn for block 1 (``sorted(signers)[1 % N]``).
        extra_args: more client flags for every node. log_level: client ``--logLevel``.
        start_timeout: seconds a node may take to answer ``eth_chainId``.

    Attributes: ``nodes`` (:class:`EthereumJSNode` list), ``ns``, ``genesis_path``.

    Raises (on enter):
        DevChainError: node or client missing, namespace not creatable, a node that
            exits or does not answer in time (its log tail is in the message).
    """

    def __init__(
        self,
        workdir: Path,
        keys: Sequence[PrivateKey],
        *,
        chain_id: int = 7202,
        period: int = 1,
        epoch: int = 30000,
        netns: str | None = None,
        genesis_time: int | None = None,
        peering: Peering = "bootnodes",
        single_node: bool | None = None,
        join_at_block: int = 1,
        extra_args: Sequence[str] = (),
        log_level: str = "info",
        start_timeout: float = 40.0,
    ) -> None:
        if not keys:
            raise DevChainError("EthereumJSNet needs at least one sealer key")
        self.workdir = Path(workdir)
        self.chain_id = chain_id
        self.period = period
        self.epoch = epoch
        self.genesis_time = genesis_time
        self.peering: Peering = peering
        self.single_node = len(keys) == 1 if single_node is None else single_node
        self.join_at_block = join_at_block
        self.extra_args = tuple(extra_args)
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.ns = NetNamespace(netns or f"edge-ejs-{os.getpid() % 100000}")
        self.genesis_path = self.workdir / "genesis.json"
        self._preload = self.workdir / "loopback.cjs"
        self.nodes = [
            EthereumJSNode(i, k, _RPC_BASE + i, _WS_BASE + i, _RLPX_BASE + i,
                           self.workdir / f"node{i}", self.workdir / f"node{i}.log")
            for i, k in enumerate(keys)
        ]

    # -- set-up -----------------------------------------------------------------------

    def _write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        signers = [n.address for n in self.nodes]
        genesis = clique_genesis(self.chain_id, signers, period=self.period, epoch=self.epoch,
                                 timestamp=self.genesis_time, alloc={a: 10**24 for a in signers})
        self.genesis_path.write_text(json.dumps(genesis, indent=1))
        self._preload.write_text(LOOPBACK_PRELOAD)
        for n in self.nodes:
            n.data_dir.mkdir(parents=True, exist_ok=True)
            keyfile = n.data_dir / "sealer.key"
            keyfile.write_text(n.key.to_hex()[2:])
            keyfile.chmod(0o600)

    def _args(self, node: EthereumJSNode, bootnodes: Sequence[str]) -> list[str]:
        node_bin = shutil.which("node")
        if node_bin is None:
            raise DevChainError("node (Node.js) is not on PATH: the EthereumJS client needs it")
        args = [
            node_bin, "--require", str(self._preload), ethereumjs_cli(),
            "--gethGenesis", str(self.genesis_path),
            "--dataDir", str(node.data_dir / "chain"),
            "--mine", "--unlock", str(node.data_dir / "sealer.key"),
            "--rpc", "--rpcAddr", "127.0.0.1", "--rpcPort", str(node.rpc_port),
            "--ws", "--wsAddr", "127.0.0.1", "--wsPort", str(node.ws_port),
            "--port", str(node.rlpx_port),
            # never optional: the defaults query a public DNS resolver and discovery nodes
            "--discDns", "false", "--discV4", "false", "--dnsAddr", "127.0.0.1", "--extIP", "127.0.0.1",
            "--maxPeers", str(max(0, len(self.nodes) - 1)),
            "--logLevel", self.log_level, "--no-logFile",  # "--logFile false" logs to a file named "false"
        ]
        if self.single_node:
            args.append("--isSingleNode")
        if bootnodes:
            args += ["--bootnodes", ",".join(bootnodes)]
        return args + list(self.extra_args)

    async def _seed_file(self, upto: int) -> list[str]:
        """Node 0's blocks ``1..upto`` as one RLP file, and the flag that preloads it.

        A joining sealer that starts with node 0's chain does not seal a block 1 of its
        own (it would, out of turn, before it syncs; see :data:`CONVERGENCE_NOTES`).
        """
        raw = b""
        for n in range(1, upto + 1):
            raw += bytes.fromhex(str(await self.rpc(0, "debug_getRawBlock", [hex(n)]))[2:])
        path = self.workdir / "seed.rlp"
        await asyncio.to_thread(path.write_bytes, raw)
        return ["--loadBlocksFromRlp", str(path)]

    async def start_node(self, i: int, bootnodes: Sequence[str] | None = None, extra: Sequence[str] = ()) -> None:
        """Start node ``i`` (again, on its data dir and ports) and wait until it answers.

        Args:
            bootnodes: enode URLs to dial; None = the known enodes of the other nodes
                when ``peering == "bootnodes"`` (so a restarted node finds its peers).
            extra: more client flags for this start only.

        Raises DevChainError if it exits or does not answer within ``start_timeout`` s.
        """
        if bootnodes is None:
            bootnodes = ([n.enode for n in self.nodes if n.index != i and n.enode]
                         if self.peering == "bootnodes" else [])
        self._spawn(i, bootnodes, extra)
        await self._wait_up(i)

    async def _wait_head(self, i: int, number: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while await self.head(i) < number:
            if loop.time() > deadline:
                raise DevChainError(f"EthereumJS sealer {i} did not reach block {number} in "
                                    f"{self.start_timeout:.0f} s: {self.nodes[i].log_tail()}")
            await asyncio.sleep(0.2)

    def _spawn(self, i: int, bootnodes: Sequence[str] = (), extra: Sequence[str] = ()) -> None:
        node = self.nodes[i]
        if node.running:
            return
        args = self.ns.exec_args([*self._args(node, bootnodes), *extra])
        log.debug("starting EthereumJS sealer %d: %s", i, " ".join(args))
        with open(node.log_path, "ab") as out:
            out.write(f"---- start {time.strftime('%H:%M:%S')} ----\n".encode())
            out.flush()
            # from the loop's thread: PR_SET_PDEATHSIG is tied to the forking thread
            node.proc = spawn(args, f"EthereumJS sealer {i}", stdout=out, cwd=node.data_dir, new_session=True)

    async def _wait_up(self, i: int) -> None:
        node = self.nodes[i]
        state = await wait_until_answers(self.chain_id, lambda: self.rpc(i, "eth_chainId", timeout=2.0),
                                         lambda: node.running, timeout_s=self.start_timeout, poll_s=0.2)
        if state == "exited":
            raise DevChainError(f"EthereumJS sealer {i} exited at start: {node.log_tail()}")
        if state == "timeout":
            await self.kill_node(i)
            raise DevChainError(f"EthereumJS sealer {i} not answering on {node.http_url} in netns "
                                f"{self.ns.name} after {self.start_timeout:.0f} s: {node.log_tail()}")
        info = await self.rpc(i, "admin_nodeInfo")
        node.enode = str(info.get("enode", "")) if isinstance(info, dict) else ""
        log.info("EthereumJS sealer %d (%s) up in netns %s: %s", i, node.address, self.ns.name, node.ws_url)

    async def kill_node(self, i: int) -> None:
        """SIGKILL node ``i``'s process group (a crash); :meth:`start_node` brings it back."""
        node = self.nodes[i]
        proc, node.proc = node.proc, None
        if proc is not None:
            await kill_process(proc, group=True)

    async def add_peer(self, i: int, j: int) -> Any:
        """``admin_addPeer`` on node ``i`` for node ``j``; returns the node's answer.

        EthereumJS takes ``{"address", "tcpPort", "udpPort"}`` (not an enode URL) and
        pings the peer over its discovery socket first.
        """
        port = self.nodes[j].rlpx_port
        return await self.rpc(i, "admin_addPeer", [{"address": "127.0.0.1", "tcpPort": port, "udpPort": port}])

    async def rpc(self, i: int, method: str, params: Sequence[Any] = (), timeout: float = 10.0) -> Any:
        """One JSON-RPC call to node ``i`` (HTTP, through the namespace). Raises DevChainError."""
        return await self.ns.rpc(self.nodes[i].rpc_port, method, params, timeout)

    async def block(self, i: int, number: int | str) -> dict[str, Any] | None:
        """``eth_getBlockByNumber(number, false)`` on node ``i`` (None past its head)."""
        tag = hex(number) if isinstance(number, int) else number
        res = await self.rpc(i, "eth_getBlockByNumber", [tag, False])
        return res if isinstance(res, dict) else None

    async def head(self, i: int) -> int:
        """Node ``i``'s ``eth_blockNumber``."""
        return int(await self.rpc(i, "eth_blockNumber"), 16)

    async def start(self) -> None:
        """Write the files, create the namespace, start and peer every node (see class doc)."""
        await asyncio.to_thread(self._write_files)
        await self.ns.__aenter__()
        try:
            seed: list[str] = []
            for i in range(len(self.nodes)):
                if i == 1 and self.join_at_block > 0:
                    await self._wait_head(0, self.join_at_block)
                    seed = await self._seed_file(self.join_at_block)
                await self.start_node(i, extra=seed if i else ())
            if self.peering == "addPeer":
                for i in range(1, len(self.nodes)):
                    for j in range(i):
                        await self.add_peer(i, j)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Kill every node's process group, then delete the namespace. Idempotent."""
        for i in range(len(self.nodes)):
            await self.kill_node(i)
        await self.ns.__aexit__(None, None, None)
