"""sd_notify(3) from the event loop: real AF_UNIX datagram sockets standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.clock import MockClock
from edge.appliance.notify import Notifier


class Receiver:
    """A datagram socket bound like systemd's notify socket; records (arrival time, text)."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.got: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.got.append((time.monotonic(), data.decode()))

    def messages(self) -> list[str]:
        return [m for _, m in self.got]

    def times(self, text: str) -> list[float]:
        return [t for t, m in self.got if m == text]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def sock_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="edge-notify-") as d:  # short: sun_path is 108 bytes
        yield str(Path(d) / "notify.sock")


@pytest.fixture
def receiver(sock_path: str) -> Iterator[Receiver]:
    r = Receiver(sock_path)
    yield r
    r.close()


async def _settle(r: Receiver, n: int) -> None:
    for _ in range(100):
        if len(r.got) >= n:
            return
        await asyncio.sleep(0.01)


async def test_ready_status_stopping_arrive_as_datagrams(receiver: Receiver, sock_path: str) -> None:
    n = Notifier({"NOTIFY_SOCKET": sock_path})
    assert n.enabled and n.watchdog_s is None
    assert n.ready("loaded")
    assert n.status("chain 7201 head 5\ncursor 5")
    assert n.stopping()
    await _settle(receiver, 3)
    n.close()
    assert receiver.messages() == ["READY=1\nSTATUS=loaded", "STATUS=chain 7201 head 5 cursor 5", "STOPPING=1"]


async def test_abstract_socket_name_with_at_prefix() -> None:
    name = f"edge-test-{os.getpid()}-{time.monotonic_ns()}"
    r = Receiver(b"\0" + name.encode())
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.address == b"\0" + name.encode()
        assert n.ready()
        await _settle(r, 1)
        assert r.messages() == ["READY=1"]
    finally:
        r.close()


async def test_without_notify_socket_everything_is_a_noop() -> None:
    n = Notifier({"WATCHDOG_USEC": "1000000"})
    assert not n.enabled
    assert not n.ready() and not n.status("x") and not n.watchdog() and not n.stopping()
    await asyncio.wait_for(n.watchdog_loop(), 1.0)  # returns at once


async def test_missing_socket_is_logged_once_and_never_raises(sock_path: str, caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier({"NOTIFY_SOCKET": sock_path})  # nobody listens there
    assert not n.ready() and not n.status("a") and not n.watchdog()
    assert [r.getMessage() for r in caplog.records if r.name == "edge.notify"][0].startswith("sd_notify to")
    assert len([r for r in caplog.records if r.name == "edge.notify"]) == 1


def test_watchdog_settings_follow_sd_watchdog_enabled(sock_path: str) -> None:
    assert Notifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "30000000"}).watchdog_s == 30.0
    mine = {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_s == 2.0
    other = dict(mine, WATCHDOG_PID=str(os.getpid() + 1))  # meant for another process
    assert Notifier(other).watchdog_s is None
    assert Notifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "soon"}).watchdog_s is None
    assert Notifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "0"}).watchdog_s is None


async def test_watchdog_pings_at_half_the_interval(receiver: Receiver, sock_path: str) -> None:
    clock = MockClock()
    pings: list[float] = []

    class Counting(Notifier):
        def watchdog(self) -> bool:
            pings.append(clock.monotonic())
            return super().watchdog()

    n = Counting({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000"})  # 0.4 s -> ping every 0.2 s
    task = asyncio.create_task(n.watchdog_loop(clock))
    for _ in range(7):
        await clock.wait_sleepers(1)
        clock.advance(0.2)
    await clock.wait_sleepers(1)
    task.cancel()
    n.close()
    assert pings == pytest.approx([0.2 * i for i in range(8)])  # t = 0, 0.2, ..., 1.4 of mock time
    loop = asyncio.get_running_loop()
    end = loop.time() + 10.0
    while len(receiver.messages()) < len(pings) and loop.time() < end:  # the receiver is another thread
        await asyncio.sleep(0.01)
    assert receiver.messages() == ["WATCHDOG=1"] * len(pings)


async def test_a_blocked_event_loop_stops_the_pings(receiver: Receiver, sock_path: str) -> None:
    n = Notifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "200000"})  # ping every 0.1 s
    task = asyncio.create_task(n.watchdog_loop())
    await asyncio.sleep(0.35)
    before = len(receiver.times("WATCHDOG=1"))
    assert before >= 3

    async def hog() -> None:  # a coroutine that blocks the loop (a bug systemd must catch)
        time.sleep(1.0)

    t0 = time.monotonic()
    await hog()
    t1 = time.monotonic()
    await asyncio.sleep(0.35)
    task.cancel()
    n.close()
    times = receiver.times("WATCHDOG=1")
    assert not [t for t in times if t0 + 0.05 < t < t1], "a ping was sent while the loop was blocked"
    assert len([t for t in times if t >= t1]) >= 3, "pings did not resume once the loop ran again"
