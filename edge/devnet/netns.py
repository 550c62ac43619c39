"""A Linux network namespace for local nodes, so that nothing they do can leave loopback.

:class:`NetNamespace` is an async context manager that creates a namespace with
``ip netns add`` (it then has only a loopback interface, brought up with ``ip link set
lo up``: no route to anywhere else exists) and deletes it on exit. Processes are run in
it with ``ip netns exec NAME ...`` (:meth:`NetNamespace.exec_args`), which enters the
namespace and then execs the program, so the process id is the program's own.

The parent stays in its own namespace. To reach a node listening on the namespace's
127.0.0.1, :meth:`NetNamespace.connect` creates the TCP socket from a short-lived thread
that has joined the namespace with ``setns(2)`` (a socket belongs to the namespace it was
created in, whichever thread uses it afterwards); :meth:`NetNamespace.rpc` sends one
JSON-RPC request over HTTP on such a socket. :meth:`NetNamespace.forward` makes a port
inside the namespace reachable from the parent's 127.0.0.1 (a TCP relay on loopback: the
agent in the host namespace follows a node in the namespace through it). Needs root
(CAP_SYS_ADMIN) and iproute2.
"""

from __future__ import annotations

import asyncio
import ctypes
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from edge.errors import DevChainError

__all__ = ["NetNamespace", "die_with_parent", "netns_available"]

log = logging.getLogger("edge.devnet.netns")

_CLONE_NEWNET = 0x40000000
_CHUNK = 65536
_T = TypeVar("_T")


def die_with_parent() -> None:
    """``preexec_fn`` for a child that must die with its parent: ``PR_SET_PDEATHSIG`` SIGKILL.

    Linux only (a no-op elsewhere). The signal is tied to the thread that forked the
    child, so start such children from a long-lived thread (the event loop's), never
    from a worker thread that ends. Kept across ``ip netns exec`` (it execs the program).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def netns_available() -> str | None:
    """None when network namespaces can be made here, else why not (for a test skip)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"edge-probe-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"`ip netns add` failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class NetNamespace:
    """One network namespace with only loopback up. An async context manager.

    Args:
        name: the namespace name (``/run/netns/NAME``); it must not exist yet.

    Raises (on enter):
        DevChainError: ``ip netns add`` failed (not root, no iproute2, name taken).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._made = False

    @property
    def path(self) -> str:
        """``/run/netns/NAME``, the handle ``setns(2)`` opens."""
        return f"/run/netns/{self.name}"

    def exec_args(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed to run inside the namespace (``ip netns exec NAME ...``)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def create(self) -> None:
        """``ip netns add`` + ``ip link set lo up``. Raises DevChainError on failure.

        A namespace of the same name left by a run that was SIGKILLed (no process in
        it any more) is deleted first; one that still has processes is not touched.
        """
        if os.path.exists(self.path):
            pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
            if pids.returncode != 0 or pids.stdout.strip():
                raise DevChainError(f"network namespace {self.name} exists and is in use")
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        for argv in (["ip", "netns", "add", self.name], self.exec_args(["ip", "link", "set", "lo", "up"])):
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                self.delete()
                raise DevChainError(f"`{' '.join(argv)}` failed: {r.stderr.strip() or r.returncode}")
            self._made = True

    def delete(self) -> None:
        """``ip netns del`` (idempotent; a namespace we did not make is left alone)."""
        if self._made:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self._made = False

    def run_inside(self, fn: Callable[[], _T]) -> _T:
        """Call ``fn`` on a fresh thread that has joined this namespace (``setns``).

        Blocking; the thread ends afterwards. Raises what ``fn`` raised, or OSError when
        the namespace cannot be entered.
        """
        box: dict[str, Any] = {}

        def body() -> None:
            try:
                libc = ctypes.CDLL("libc.so.6", use_errno=True)
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({self.path}): {os.strerror(err)}")
                finally:
                    os.close(fd)
                box["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = e

        t = threading.Thread(target=body, name=f"netns-{self.name}", daemon=True)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def connect(self, port: int, timeout: float = 5.0) -> socket.socket:
        """A TCP socket connected to ``127.0.0.1:port`` inside the namespace (blocking).

        Raises OSError (ConnectionRefusedError while nothing listens there yet).
        """
        return self.run_inside(lambda: socket.create_connection(("127.0.0.1", port), timeout))

    def rpc_sync(self, port: int, method: str, params: Sequence[Any] = (), timeout: float = 10.0) -> Any:
        """One JSON-RPC call over HTTP to ``127.0.0.1:port`` in the namespace (blocking).

        Returns the ``result``. Raises DevChainError for a transport failure or an error
        answer (naming the method and the port).
        """
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            conn.sock = self.connect(port, timeout)
            try:
                conn.request("POST", "/", body, {"Content-Type": "application/json"})
                answer = json.loads(conn.getresponse().read())
            finally:
                conn.close()
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise DevChainError(f"{method} to 127.0.0.1:{port} in netns {self.name} failed: {e}") from e
        if not isinstance(answer, dict) or "error" in answer:
            raise DevChainError(f"{method} to 127.0.0.1:{port} in netns {self.name}: "
                                f"{answer.get('error') if isinstance(answer, dict) else answer!r}")
        return answer.get("result")

    async def rpc(self, port: int, method: str, params: Sequence[Any] = (), timeout: float = 10.0) -> Any:
        """:meth:`rpc_sync` on a worker thread (same result and errors)."""
        return await asyncio.to_thread(self.rpc_sync, port, method, params, timeout)

    @asynccontextmanager
    async def forward(self, port: int) -> AsyncIterator[int]:
        """Relay host ``127.0.0.1:<returned port>`` to ``127.0.0.1:port`` inside the namespace.

        An async context manager yielding the host port (picked by the OS, bound to
        127.0.0.1 only). Each accepted connection gets its own socket into the namespace
        (:meth:`connect`, from a worker thread) and bytes are copied both ways until either
        side ends (EOF or error); then both sides are closed. A connection that cannot be
        made inside (nothing listening yet) is closed at once, so the client sees a closed
        connection, as it would from a node that is down. Every relay task belongs to a
        TaskGroup owned here: on exit the listener is closed and every relay cancelled
        and awaited (no task outlives the block).

        Args:
            port: the TCP port inside the namespace (on its 127.0.0.1).

        Raises:
            OSError: the host listener cannot be bound.
        """
        closing = False
        relays: set[asyncio.Task[None]] = set()
        async with asyncio.TaskGroup() as tg:

            def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                if closing:
                    writer.close()
                    return
                t = tg.create_task(self._relay(port, reader, writer), name=f"netns-{self.name}-relay-{port}")
                relays.add(t)
                t.add_done_callback(relays.discard)

            server = await asyncio.start_server(accepted, "127.0.0.1", 0)
            try:
                host_port = int(server.sockets[0].getsockname()[1])
                log.debug("netns %s: 127.0.0.1:%d forwards to 127.0.0.1:%d inside", self.name, host_port, port)
                yield host_port
            finally:
                closing = True
                server.close()
                await server.wait_closed()
                for t in list(relays):
                    t.cancel()

    async def _relay(self, port: int, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        """One forwarded connection: connect inside, copy both ways, close both sides."""
        inner_w: asyncio.StreamWriter | None = None
        try:
            try:
                sock = await asyncio.to_thread(self.connect, port)
            except OSError as e:
                log.debug("netns %s: cannot reach 127.0.0.1:%d inside: %s", self.name, port, e)
                return
            sock.setblocking(False)
            try:
                inner_r, inner_w = await asyncio.open_connection(sock=sock)
            except BaseException:
                sock.close()
                raise
            writers = (client_w, inner_w)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_copy(client_r, inner_w, writers))
                tg.create_task(_copy(inner_r, client_w, writers))
        finally:
            for w in (client_w, inner_w):
                if w is not None:
                    w.close()

    async def __aenter__(self) -> NetNamespace:
        await asyncio.to_thread(self.create)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.delete)


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, both: Sequence[asyncio.StreamWriter]) -> None:
    """Copy ``src`` to ``dst`` until EOF or a connection error, then close ``both`` writers
    (which ends the opposite copy too: its reader sees EOF once its transport closes)."""
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        for w in both:
            w.close()
