"""The local tier of ``edge demo --local clique``: a real Clique network instead of anvil.

:class:`LocalClique` is an async context manager that starts two EthereumJS 0.10.5
sealers (:class:`edge.devnet.ethereumjs.EthereumJSNet`, the most this client converges
with: see its ``CONVERGENCE_NOTES``) in a network namespace, and relays the WebSocket
JSON-RPC of sealer 0 to the host's 127.0.0.1 (:meth:`edge.devnet.netns.NetNamespace.forward`):
the agent and the auditor run in the host namespace and reach the chain only through
that port. On exit the relay is closed, every node killed and the namespace deleted.
Nothing leaves loopback: the launcher starts every node with ``--discDns false --discV4
false --dnsAddr 127.0.0.1 --extIP 127.0.0.1`` (its defaults would query a public DNS
resolver and discovery nodes), every port bound to 127.0.0.1, inside the namespace.

What the tier carries: empty Clique blocks only. 0.10.5's block builder drops every
transaction (field notes), so no contract, no log and no CRUD write can be put on it;
what the demo then shows on this tier is that every block is ingested from the genesis
with its sealer recovered and authorized by the signer set taken from the chain, and
checkpointed, anchored and verified like any other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final

from eth_keys.datatypes import PrivateKey

from edge.devnet.ethereumjs import EthereumJSNet, ethereumjs_cli
from edge.devnet.netns import netns_available
from edge.errors import DevChainError
from edge.store import clique as cstore
from edge.store.db import Outbox

__all__ = ["ACTIVITY", "CLIENT", "LocalClique", "ethereumjs_version", "seal_summary"]

CLIENT: Final = "ethereumjs"
"""The name of the local tier's client in the demo's ``clients`` map."""

ACTIVITY: Final = "blocks only: this client's block builder drops transactions"
"""What activity the EthereumJS tier carries (and why not more)."""


def ethereumjs_version(cli: str | None = None) -> str:
    """The version of the EthereumJS client at ``cli`` (default :func:`ethereumjs_cli`),
    read from its ``package.json``. Raises DevChainError when the client or its
    ``package.json`` is missing or unreadable."""
    path = Path(cli or ethereumjs_cli())
    for parent in path.parents:  # the nearest package.json of @ethereumjs/client (dist/ has its own)
        pkg = parent / "package.json"
        if pkg.is_file():
            try:
                meta = json.loads(pkg.read_text())
                if isinstance(meta, dict) and meta.get("name") == "@ethereumjs/client":
                    return str(meta["version"])
            except (OSError, ValueError, KeyError) as e:
                raise DevChainError(f"cannot read the EthereumJS client version from {pkg}: {e}") from e
    raise DevChainError(f"no package.json of @ethereumjs/client above {path}: cannot tell the client version")


class LocalClique:
    """Two EthereumJS Clique sealers in a namespace, node 0's WS relayed to the host.

    Args:
        workdir: where the genesis, keys, chain data and logs go (created).
        chain_id: the chain id. period: seconds per block (EIP-225). epoch: checkpoint interval.
        sealers: how many sealer nodes (2 converge; see ``CONVERGENCE_NOTES``).
        keys: the sealer keys (default: fresh random ones).

    Attributes (after enter): ``ws_url`` (the host's relayed ``ws://127.0.0.1:PORT``),
    ``net`` (the :class:`EthereumJSNet`), ``signers`` (EIP-55 addresses of the genesis set),
    ``client`` (``"ethereumjs 0.10.5"``).

    Raises (on enter):
        DevChainError: no network namespace can be made here (not root, no iproute2: the
            message says which), the client or Node.js is missing, or a node does not start.
    """

    def __init__(self, workdir: Path, *, chain_id: int = 7201, period: int = 1, epoch: int = 30000,
                 sealers: int = 2, keys: Sequence[PrivateKey] | None = None) -> None:
        if keys is None:
            keys = [PrivateKey(os.urandom(32)) for _ in range(sealers)]
        # node 0 must be the sealer in turn for block 1 (sorted signers[1 % N]): it starts
        # first and the others join with its block 1 preloaded (join_at_block)
        ordered = sorted(keys, key=lambda k: k.public_key.to_checksum_address().lower())
        first = 1 % len(ordered)
        self._keys = [ordered[first], *ordered[:first], *ordered[first + 1:]]
        self.workdir = Path(workdir)
        self.chain_id = chain_id
        self.period = period
        self.epoch = epoch
        self.ws_url = ""
        self.client = CLIENT
        self.version = ""
        self.net: EthereumJSNet | None = None
        self._stack = AsyncExitStack()

    @property
    def signers(self) -> tuple[str, ...]:
        """The genesis signer set (EIP-55, sorted as in the genesis extraData)."""
        return tuple(sorted((str(k.public_key.to_checksum_address()) for k in self._keys), key=str.lower))

    def poa_section(self) -> dict[str, Any]:
        """The agent's ``[poa]`` section for this chain: Clique, no ``authorities`` (the
        set is the genesis', followed by votes), the genesis' period and epoch."""
        return {"engine": "clique", "period_s": self.period, "epoch": self.epoch}

    async def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call to sealer 0 (HTTP, inside the namespace), like
        :meth:`edge.devnet.anvil.DevChain.rpc`. Raises DevChainError."""
        if self.net is None:
            raise DevChainError("the local Clique network is not running")
        return await self.net.rpc(0, method, params)

    def info(self) -> dict[str, Any]:
        """The demo JSON's ``local`` entry: client with version, sealers, activity, signers."""
        return {"client": f"{CLIENT} {self.version}", "sealers": len(self._keys), "activity": ACTIVITY,
                "signers": list(self.signers), "period_s": self.period, "epoch": self.epoch}

    def check(self) -> None:
        """Whether this network can start here (blocking, fast): a network namespace can be
        made and the client is installed. Sets ``version``. Raises DevChainError naming
        what is missing (root, iproute2, the npm package)."""
        why = netns_available()
        if why:
            raise DevChainError(f"edge demo --local clique runs the EthereumJS sealers in a network namespace "
                                f"(so nothing leaves loopback), which cannot be made here: {why}")
        self.version = ethereumjs_version()

    async def __aenter__(self) -> LocalClique:
        self.check()
        try:
            self.net = await self._stack.enter_async_context(EthereumJSNet(
                self.workdir, self._keys, chain_id=self.chain_id, period=self.period, epoch=self.epoch))
            port = await self._stack.enter_async_context(self.net.ns.forward(self.net.nodes[0].ws_port))
        except BaseException:
            await self._stack.aclose()
            raise
        self.ws_url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


async def seal_summary(ob: Outbox, chain_id: int, signers: Sequence[str]) -> dict[str, Any]:
    """How the stored blocks of ``chain_id`` were sealed: ``sealed`` (blocks above the
    genesis), ``seal_ok`` (their seal recovered and authorized), ``in_turn`` (difficulty
    2), ``by_signer`` (EIP-55 address -> blocks), ``strangers`` (blocks sealed by an
    address outside ``signers``), ``alarms`` (Clique alarm rows stored for the chain)."""
    known = {s.lower() for s in signers}
    by: dict[str, int] = {}
    sealed = ok = in_turn = strangers = 0
    for number, (sealer, seal_ok, turn) in (await cstore.in_turn_flags(ob, chain_id)).items():
        if number == 0:
            continue
        sealed += 1
        ok += bool(seal_ok)
        in_turn += bool(turn)
        addr = "0x" + sealer.hex() if sealer is not None else "none"
        strangers += addr not in known
        by[addr] = by.get(addr, 0) + 1
    names = {s.lower(): s for s in signers}
    return {"sealed": sealed, "seal_ok": ok, "in_turn": in_turn, "strangers": strangers,
            "alarms": len(await cstore.alarms(ob, chain_id)),
            "by_signer": {names.get(a, a): n for a, n in sorted(by.items())}}
