"""What every dev-chain launcher does with its node process (anvil, Hardhat, EthereumJS).

- :func:`spawn`: start the node with ``PR_SET_PDEATHSIG`` (:func:`edge.devnet.netns.die_with_parent`;
  call it from the event loop's thread), optionally in a new session so that its whole
  process group can be signalled;
- :func:`wait_until_answers`: poll ``eth_chainId`` until the node reports the expected chain
  id, it exits, or the start timeout passes;
- :func:`stop_process` / :func:`kill_process`: SIGTERM then SIGKILL, or SIGKILL at once, to the
  process or its group; no orphans;
- :class:`LoopbackUrls`: ``http_url`` / ``ws_url`` of a node listening on 127.0.0.1;
- :class:`StartStop`: the async context manager over a launcher's ``start`` / ``stop``.
"""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, Self

from edge.devnet.netns import die_with_parent
from edge.errors import DevChainError

__all__ = ["LoopbackUrls", "Readiness", "StartStop", "kill_process", "spawn", "stop_process", "wait_until_answers"]

Readiness = Literal["up", "exited", "timeout"]
"""How :func:`wait_until_answers` ended."""


class LoopbackUrls(ABC):
    """Mixin: the JSON-RPC URLs of a node on 127.0.0.1, from its :attr:`ports`."""

    @property
    @abstractmethod
    def ports(self) -> tuple[int, int]:
        """``(http_port, ws_port)``."""

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT`` (HTTP JSON-RPC)."""
        return f"http://127.0.0.1:{self.ports[0]}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT`` (WebSocket JSON-RPC)."""
        return f"ws://127.0.0.1:{self.ports[1]}"


class StartStop(ABC):
    """Mixin: ``async with launcher:`` runs :meth:`start` on enter and :meth:`stop` on exit
    (also when the body raises or is cancelled)."""

    @abstractmethod
    async def start(self) -> None:
        """Start the node(s) and wait until they answer."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the node(s), leaving no process behind."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def spawn(
    args: Sequence[str],
    what: str,
    *,
    stdout: IO[bytes] | int = subprocess.DEVNULL,
    stderr: IO[bytes] | int = subprocess.STDOUT,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a node process (stdin from /dev/null) that dies with this process.

    Args:
        args: the command line. what: the node, for the error (``"anvil for poa"``).
        stdout, stderr: where its output goes (a file, ``subprocess.PIPE``, ...).
        cwd, env: as :class:`subprocess.Popen`. new_session: its own session and process
            group (pgid == pid), for :func:`stop_process` / :func:`kill_process` with ``group``.

    Raises:
        DevChainError: the program could not be started (``cannot start {what}: ...``).
    """
    try:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=cwd,
                                env=env, preexec_fn=die_with_parent, start_new_session=new_session)
    except OSError as e:
        raise DevChainError(f"cannot start {what}: {e}") from e


async def wait_until_answers(
    chain_id: int,
    ask_chain_id: Callable[[], Awaitable[Any]],
    alive: Callable[[], bool],
    *,
    timeout_s: float,
    poll_s: float,
) -> Readiness:
    """Poll a starting node until it answers ``eth_chainId`` with ``chain_id``.

    Args:
        chain_id: the chain id it must report. ask_chain_id: one ``eth_chainId`` call (hex
            quantity); a DevChainError from it means "not yet".
        alive: whether the process still runs. timeout_s: how long to try (s).
        poll_s: pause between tries (s).

    Returns:
        ``"up"``; ``"exited"`` when the process is gone; ``"timeout"`` past ``timeout_s``
        (the caller stops the node and says why).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if not alive():
            return "exited"
        try:
            if int(await ask_chain_id(), 16) == chain_id:
                return "up"
        except DevChainError:
            pass
        if loop.time() > deadline:
            return "timeout"
        await asyncio.sleep(poll_s)


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals, group: bool) -> None:
    if proc.poll() is not None:
        return
    if not group:
        proc.send_signal(sig)
        return
    try:
        os.killpg(proc.pid, sig)  # its own session: pgid == pid
    except ProcessLookupError:
        pass


async def stop_process(proc: subprocess.Popen[bytes], *, group: bool = False, grace_s: float = 3.0) -> None:
    """SIGTERM ``proc`` (its process group with ``group``), SIGKILL after ``grace_s`` s;
    returns once it has been reaped."""
    _signal(proc, signal.SIGTERM, group)
    try:
        await asyncio.to_thread(proc.wait, grace_s)
    except subprocess.TimeoutExpired:
        _signal(proc, signal.SIGKILL, group)
        await asyncio.to_thread(proc.wait)


async def kill_process(proc: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """SIGKILL ``proc`` (its process group with ``group``) at once and reap it."""
    _signal(proc, signal.SIGKILL, group)
    await asyncio.to_thread(proc.wait)
