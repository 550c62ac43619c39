"""Local dev chains: Foundry's ``anvil`` processes on loopback, one per tier.

Used by ``edge demo`` and by the tests (never a mocked JSON-RPC where a real node can
answer). Each :class:`DevChain` is an async context manager that starts one anvil on a
free ``127.0.0.1`` port, waits until it answers ``eth_chainId``, and on exit terminates
it (SIGTERM, then SIGKILL). anvil is started with ``PR_SET_PDEATHSIG`` so that it dies
with its parent even when the parent is killed with SIGKILL: no orphans, tests included.

The anvil binary is found in this order: ``$EDGE_ANVIL``; the platform binary of the
pinned ``@foundry-rs/anvil`` in the project's ``node_modules`` (``make setup`` installs
it; ``node_modules/.bin/anvil`` itself is a node wrapper that exits on SIGTERM without
stopping the real anvil, so it is used only as a last resort); ``anvil`` on ``PATH``.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edge.aio import enter_all
from edge.devnet.process import LoopbackUrls, StartStop, kill_process, spawn, stop_process, wait_until_answers
from edge.errors import ChainError, DevChainError

__all__ = ["DevChain", "DevChains", "TIERS", "TierSpec", "anvil_path", "chain_for", "free_port", "rpc_call", "rpc_batch"]

log = logging.getLogger("edge.devchain")

_REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class TierSpec:
    """How to start one tier's chain: name, chain id, block time (s; 0 = automine), more
    flags, and the client that serves it: ``"anvil"`` (:class:`DevChain`) or
    ``"hardhat"`` (:class:`edge.devnet.hardhat.HardhatChain`)."""

    name: str
    chain_id: int
    block_time: float
    extra_args: tuple[str, ...] = ()
    client: str = "anvil"


TIERS: tuple[TierSpec, ...] = (
    TierSpec("poa", 7201, 1.0),
    TierSpec("testnet-a", 7301, 1.0),
    TierSpec("testnet-b", 7302, 1.0),
    TierSpec("mainnet", 7401, 2.0),
)
"""The default tiers of the demo: the local PoA chain, two testnets, one mainnet."""


def anvil_path() -> str:
    """Path of the anvil binary. Raises DevChainError (with how to install) if none."""
    env = os.environ.get("EDGE_ANVIL")
    if env:
        if not os.access(env, os.X_OK):
            raise DevChainError(f"EDGE_ANVIL={env} is not an executable file")
        return env
    for base in (_REPO, Path.cwd()):
        for cand in sorted((base / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil")):
            if os.access(cand, os.X_OK):
                return str(cand)
    found = shutil.which("anvil")
    if found:
        return found
    for base in (_REPO, Path.cwd()):
        wrapper = base / "node_modules" / ".bin" / "anvil"
        if os.access(wrapper, os.X_OK):
            return str(wrapper)
    raise DevChainError(
        "anvil not found: run `make setup` (installs the pinned @foundry-rs/anvil into "
        "node_modules/) or set EDGE_ANVIL to an anvil binary"
    )


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def rpc_call(url: str, method: str, params: Sequence[Any] = (), timeout: float = 10.0) -> Any:
    """One JSON-RPC control call over HTTP to a dev chain (``anvil_mine``, ``evm_snapshot``
    ...), through :class:`edge.rpc.http.HttpRpc`. Raises DevChainError on any failure."""
    from edge.rpc.http import HttpRpc

    try:
        async with HttpRpc(url, timeout=timeout) as rpc:
            return await rpc.call(method, params)
    except ChainError as e:
        raise DevChainError(f"{method} to {url} failed: {e}") from e


async def rpc_batch(url: str, calls: Sequence[tuple[str, Sequence[Any]]], timeout: float = 30.0) -> list[Any]:
    """A JSON-RPC batch over HTTP to a dev chain; results in request order.

    Raises DevChainError on a transport failure or if any call answered an error (the
    first one, with its method)."""
    from edge.rpc.http import HttpRpc

    if not calls:
        return []
    try:
        async with HttpRpc(url, timeout=timeout) as rpc:
            return await rpc.batch(calls)
    except ChainError as e:
        raise DevChainError(f"batch of {len(calls)} to {url} failed: {e}") from e


@dataclass
class DevChain(LoopbackUrls, StartStop):
    """One anvil on loopback. An async context manager; see the module docstring.

    Args:
        name: tier name (for logs). chain_id: the chain id it reports.
        block_time: seconds between blocks; 0 means automine (one block per tx).
        port: TCP port (0: pick a free one). extra_args: more anvil flags.

    Attributes (after enter): ``http_url``, ``ws_url``, ``pid``.

    Raises (on enter):
        DevChainError: anvil missing, exited early, or not answering within ``start_timeout`` s.
    """

    name: str
    chain_id: int
    block_time: float = 1.0
    port: int = 0
    extra_args: tuple[str, ...] = ()
    start_timeout: float = 20.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    client: ClassVar[str] = "anvil"

    @classmethod
    def from_spec(cls, spec: TierSpec, **kw: Any) -> DevChain:
        """A DevChain for one of :data:`TIERS` (keyword overrides allowed)."""
        return cls(spec.name, spec.chain_id, spec.block_time, extra_args=spec.extra_args, **kw)

    @property
    def ports(self) -> tuple[int, int]:
        """``(port, port)``: HTTP and WebSocket JSON-RPC share one port."""
        return self.port, self.port

    @property
    def pid(self) -> int | None:
        """Process id of the running anvil, or None."""
        return self._proc.pid if self._proc else None

    async def start(self) -> None:
        """Start anvil and wait until it answers. Idempotent while running."""
        if self._proc is not None and self._proc.poll() is None:
            return
        if self.port == 0:
            self.port = free_port()
        args = [
            anvil_path(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--silent",
        ]
        if self.block_time > 0:
            args += ["--block-time", _fmt_seconds(self.block_time)]
        args += list(self.extra_args)
        log.debug("starting %s: %s", self.name, " ".join(args))
        self._proc = proc = spawn(args, f"anvil for {self.name}", stderr=subprocess.PIPE)
        state = await wait_until_answers(self.chain_id, lambda: rpc_call(self.http_url, "eth_chainId", timeout=1.0),
                                         lambda: proc.poll() is None, timeout_s=self.start_timeout, poll_s=0.05)
        if state == "exited":
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            self._proc = None
            raise DevChainError(f"anvil for {self.name} exited at start: {err.strip()[-500:]}")
        if state == "timeout":
            await self.stop()
            raise DevChainError(f"anvil for {self.name} not answering on {self.http_url}")
        log.info("dev chain %s up: chain id %d on %s", self.name, self.chain_id, self.ws_url)

    async def stop(self) -> None:
        """Stop anvil (SIGTERM, then SIGKILL after 3 s). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        await stop_process(proc)
        if proc.stderr:
            proc.stderr.close()

    async def kill(self) -> None:
        """SIGKILL anvil at once (a node dying); :meth:`start` brings it back on the same port."""
        if self._proc is not None:
            await kill_process(self._proc)
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None

    async def rpc(self, method: str, *params: Any) -> Any:
        """A JSON-RPC control call over HTTP (see :func:`rpc_call`)."""
        return await rpc_call(self.http_url, method, params)

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """A JSON-RPC batch over HTTP (see :func:`rpc_batch`)."""
        return await rpc_batch(self.http_url, calls)


def chain_for(spec: TierSpec) -> DevChain:
    """The launcher of ``spec.client`` for one tier (not started). Raises DevChainError
    for a client this module cannot start."""
    if spec.client == "anvil":
        return DevChain.from_spec(spec)
    if spec.client == "hardhat":
        from edge.devnet.hardhat import HardhatChain

        return HardhatChain.from_spec(spec)
    raise DevChainError(f"tier {spec.name}: unknown client {spec.client!r} (anvil or hardhat)")


class DevChains:
    """Several :class:`DevChain` tiers started together (default: :data:`TIERS`).

    An async context manager; on exit every anvil is stopped, even if one failed to start.
    Index by tier name: ``chains["poa"].ws_url``.
    """

    def __init__(self, tiers: Sequence[TierSpec] = TIERS) -> None:
        self.chains: dict[str, DevChain] = {t.name: chain_for(t) for t in tiers}
        self._stack = AsyncExitStack()

    def __getitem__(self, name: str) -> DevChain:
        return self.chains[name]

    @property
    def clients(self) -> dict[str, str]:
        """Which client serves each tier: ``{"poa": "anvil", "testnet-a": "hardhat", ...}``."""
        return {name: c.client for name, c in self.chains.items()}

    async def __aenter__(self) -> DevChains:
        await enter_all(self._stack, self.chains.values())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def _fmt_seconds(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else repr(s)
