"""image/edge.service: `systemd-analyze verify`, and the agent started the way the unit
starts it.

No systemd runs as PID 1 on the build machines (a container), so neither the system
manager nor ``systemd-run --user`` / ``systemd --user`` is available ("has not been
booted with systemd"). The documented equivalent used here does what systemd does for
this unit, read from the unit file itself: the ``ExecStart=`` command line (the venv's
``edge`` replaced by this interpreter's ``-m edge``, ``/boot/firmware`` by a temporary
"boot partition" folder holding the shipped ``image/edge.toml``), a clean environment
with ``Environment=``, ``$STATE_DIRECTORY`` (``StateDirectory=``, also the working
directory), ``$CREDENTIALS_DIRECTORY`` holding the ``LoadCredential=`` file,
``$NOTIFY_SOCKET`` (a datagram socket with ``SO_PASSCRED``: like ``NotifyAccess=main``,
only messages from the main PID count) and ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID``.
The watchdog interval is shortened from the unit's 30 s to 2 s so the test sees several
pings; the unit's value is checked separately. Stop = SIGTERM, as ``systemctl stop``.

``systemd-analyze`` comes with the Debian package ``systemd`` (``apt-get install
systemd``); the verify tests skip, saying so, where it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "image" / "edge.service"
BOOT_TOML = REPO / "image" / "edge.toml"

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze missing (Debian package: systemd)")


def unit_settings(path: Path = UNIT) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, in order (keys may repeat)."""
    out, section = [], ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, val = line.partition("=")
        out.append((section, key.strip(), val.strip()))
    return out


def setting(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in unit_settings() if s == section and k == key]


# -- systemd-analyze -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_root() -> Iterator[Path]:
    """A root with the host's system units (targets the unit depends on) and a stub at the
    ExecStart path: `verify` checks that the command exists and is executable."""
    with tempfile.TemporaryDirectory(prefix="edge-root-") as d:
        root = Path(d)
        paths = subprocess.run(["systemd-analyze", "unit-paths"], capture_output=True, text=True,
                               check=True).stdout.split()
        system_dir = next(Path(p) for p in paths if (Path(p) / "sysinit.target").exists())
        shutil.copytree(system_dir, root / system_dir.relative_to("/"), symlinks=True)
        exe = root / setting("ExecStart")[0].split()[0].lstrip("/")
        exe.parent.mkdir(parents=True)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
        (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
        yield root


def _verify(root: Path, unit_text: str, name: str = "edge.service") -> subprocess.CompletedProcess[str]:
    (root / "etc/systemd/system" / name).write_text(unit_text)
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", name], capture_output=True, text=True,
                          timeout=60)


@needs_analyze
def test_unit_passes_systemd_analyze_verify(fake_root: Path) -> None:
    r = _verify(fake_root, UNIT.read_text())
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr  # warnings count as failures


@needs_analyze
def test_verify_reports_a_broken_unit(fake_root: Path) -> None:
    broken = UNIT.read_text().replace("Type=notify", "Type=notifyy").replace("WatchdogSec=30", "WatchdogSec=soon")
    r = _verify(fake_root, broken, "broken.service")
    assert "Failed to parse service type" in r.stderr
    assert "Failed to parse sec value" in r.stderr


@needs_analyze
def test_sandbox_exposure_stays_low(fake_root: Path) -> None:
    (fake_root / "etc/systemd/system/edge.service").write_text(UNIT.read_text())
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={fake_root}", "--threshold=25",
                        "edge.service"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:]
    m = re.search(r"Overall exposure level for edge\.service: ([0-9.]+)", r.stdout)
    assert m is not None and float(m.group(1)) <= 2.5


def test_unit_declares_what_the_appliance_needs() -> None:
    assert setting("Type") == ["notify"] and setting("NotifyAccess") == ["main"]
    assert setting("ExecStart") == ["/opt/edge/venv/bin/edge run --config /boot/firmware/edge.toml"]
    assert setting("WatchdogSec") == ["30"] and setting("Restart") == ["on-failure"]
    assert setting("User") == ["edge"] and setting("Group") == ["edge"]
    assert set(setting("SupplementaryGroups")[0].split()) == {"gpio", "video"}
    assert setting("StateDirectory") == ["edge"] and setting("ProtectSystem") == ["strict"]
    assert setting("NoNewPrivileges") == ["yes"] and setting("PrivateTmp") == ["yes"]
    assert setting("ReadOnlyPaths") == ["/boot/firmware"] and setting("MemoryMax") == ["400M"]
    assert setting("LoadCredential") == ["edge-passphrase:/etc/edge/passphrase"]
    assert "PYTHONUNBUFFERED=1" in setting("Environment")
    toml = BOOT_TOML.read_text()
    assert 'passphrase = "credential:edge-passphrase"' in toml  # the credential's name


# -- running it the way systemd does ---------------------------------------------------------


@dataclass
class Note:
    at: float
    pid: int
    text: str


class NotifySocket:
    """Datagram socket with SO_PASSCRED: records each message with its sender's PID."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.05)
        self.notes: list[Note] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        size = socket.CMSG_SPACE(struct.calcsize("iII"))
        while not self._stop.is_set():
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, size)
            except TimeoutError:
                continue
            pid = -1
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            self.notes.append(Note(time.monotonic(), pid, data.decode()))

    def from_pid(self, pid: int) -> list[Note]:
        return [n for n in self.notes if n.pid == pid]  # NotifyAccess=main

    def wait_for(self, pid: int, field: str, timeout: float) -> Note | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for n in self.from_pid(pid):
                if field in n.text.split("\n"):
                    return n
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@dataclass
class Service:
    proc: subprocess.Popen[str]
    notify: NotifySocket
    state: Path

    def stderr_after_exit(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


def start_like_systemd(boot: Path, state: Path, creds_src: Path, sock: str, watchdog_usec: int) -> Service:
    """Start ExecStart= of the unit with the environment systemd gives it."""
    argv = setting("ExecStart")[0].split()
    boot_mount = setting("ReadOnlyPaths")[0]
    argv = [sys.executable, "-m", "edge"] + [a.replace(boot_mount, str(boot)) for a in argv[1:]]
    creds = state.parent / "credentials"
    creds.mkdir(mode=0o700)
    for spec in setting("LoadCredential"):
        name, _, _src = spec.partition(":")
        shutil.copy(creds_src, creds / name)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(state),
           "STATE_DIRECTORY": str(state), "CREDENTIALS_DIRECTORY": str(creds),
           "NOTIFY_SOCKET": sock, "WATCHDOG_USEC": str(watchdog_usec)}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for assignment in setting("Environment"):
        k, _, v = assignment.partition("=")
        env[k] = v
    notify = NotifySocket(sock)
    # exec keeps the PID: WATCHDOG_PID is the main process, as systemd sets it
    proc = subprocess.Popen(["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *argv], cwd=state, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    return Service(proc, notify, state)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def boot_partition(tmp: Path, state: Path, ws_url: str, *, metrics_port: int = 0,
                   replace: dict[str, str] | None = None) -> Path:
    """A boot-partition folder holding the shipped edge.toml, pointed at ``ws_url`` and
    ``state`` (for /var/lib/edge), with the metrics on ``metrics_port`` (0: any free one)."""
    boot = tmp / "boot-firmware"
    boot.mkdir()
    text = BOOT_TOML.read_text()
    text = re.sub(r'^ws_url = "[^"]*"', f'ws_url = "{ws_url}"', text, count=1, flags=re.M)
    text = text.replace("/var/lib/edge", str(state))
    text = re.sub(r"^port = 9108$", f"port = {metrics_port}", text, count=1, flags=re.M)
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    (boot / "edge.toml").write_text(text)
    return boot


@pytest.fixture
def dirs() -> Iterator[tuple[Path, Path, str]]:
    with tempfile.TemporaryDirectory(prefix="edge-svc-") as d:  # short: sun_path is 108 bytes
        tmp = Path(d)
        state = tmp / "var-lib-edge"
        state.mkdir(mode=0o750)
        creds = tmp / "passphrase"
        creds.write_text("correct horse battery staple\n")
        yield tmp, state, str(tmp / "notify")


def _stop(svc: Service, timeout: float) -> int:
    if svc.proc.poll() is None:
        svc.proc.send_signal(signal.SIGTERM)
    try:
        return svc.proc.wait(timeout)
    finally:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait()
        svc.notify.close()


async def test_service_starts_the_agent_with_the_boot_partition_config(chain_factory: Any,
                                                                       dirs: tuple[Path, Path, str]) -> None:
    import asyncio

    tmp, state, sock = dirs
    chain = await chain_factory(block_time=1.0)
    boot = boot_partition(tmp, state, chain.ws_url)
    svc = start_like_systemd(boot, state, tmp / "passphrase", sock, watchdog_usec=2_000_000)
    pid = svc.proc.pid
    try:
        ready = await asyncio.to_thread(svc.notify.wait_for, pid, "READY=1", 60.0)
        assert ready is not None, f"no READY=1 from pid {pid}; exit {svc.proc.poll()}"
        def pings() -> list[float]:
            return [n.at for n in svc.notify.from_pid(pid) if n.text == "WATCHDOG=1" and n.at >= ready.at - 0.5]

        await eventually("four WATCHDOG=1 pings", lambda: len(pings()) >= 4, 30.0)
        # every 1 s (half of WATCHDOG_USEC): never as late as systemd's 2 s kill, never a burst
        assert all(0.5 < b - a < 2.0 for a, b in zip(pings(), pings()[1:])), pings()
        assert (state / "edge.sqlite").exists()  # the outbox went to StateDirectory
        assert svc.proc.poll() is None
    finally:
        rc = await asyncio.to_thread(_stop, svc, float(re.sub(r"\D", "", setting("TimeoutStopSec")[0])))
    err = svc.stderr_after_exit()
    assert rc == 0, err
    assert [n for n in svc.notify.notes if n.pid != pid] == []  # NotifyAccess=main holds
    assert any(n.text.startswith("STOPPING=1") for n in svc.notify.from_pid(pid))
    m = re.search(r"metrics: Prometheus text on http://127\.0\.0\.1:(\d+)/metrics", err)
    assert m is not None, err
    assert "gpio: " in err  # on a Pi: the pins; elsewhere: "gpio: disabled, no usable GPIO here (...)"
    m2 = re.search(r"stopping: chain 7201 head (\d+) cursor (\d+)", err)
    assert m2 is not None and int(m2.group(2)) >= 1, err


async def test_service_metrics_are_served_while_it_runs(chain_factory: Any, dirs: tuple[Path, Path, str]) -> None:
    import asyncio

    tmp, state, sock = dirs
    chain = await chain_factory(block_time=1.0)
    port = free_port()
    boot = boot_partition(tmp, state, chain.ws_url, metrics_port=port,
                          replace={"stats_interval_s = 30.0": "stats_interval_s = 1.0"})
    svc = start_like_systemd(boot, state, tmp / "passphrase", sock, watchdog_usec=10_000_000)
    pid = svc.proc.pid
    try:
        assert await asyncio.to_thread(svc.notify.wait_for, pid, "READY=1", 60.0) is not None
        text = ""

        def head_seen() -> bool:  # metrics are refreshed every 5 s
            return re.search(r"^edge_head_block [1-9]", text, re.M) is not None

        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while not head_seen() and loop.time() < end:
            text = await asyncio.to_thread(_scrape, port)
            if not head_seen():
                await asyncio.sleep(0.5)
        # the statistics line (every stats_interval_s = 1 s) reaches `systemctl status`
        await eventually("a STATUS= statistics line",
                         lambda: any(n.text.startswith("STATUS=chain 7201 head") for n in svc.notify.from_pid(pid)), 30.0)
    finally:
        rc = await asyncio.to_thread(_stop, svc, 30.0)
    err = svc.stderr_after_exit()
    assert rc == 0, err
    m = re.search(r"metrics: Prometheus text on http://127\.0\.0\.1:(\d+)/metrics", err)
    assert m is not None and port == int(m.group(1)), err
    head = re.search(r"^edge_head_block (\S+)$", text, re.M)
    assert head is not None and float(head.group(1)) >= 1, text
    statuses = [n.text for n in svc.notify.from_pid(pid) if n.text.startswith("STATUS=chain 7201 head")]
    assert statuses, svc.notify.notes  # the statistics line reaches `systemctl status`


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        return str(r.read().decode())


def test_invalid_boot_config_stops_the_start_naming_the_key(dirs: tuple[Path, Path, str]) -> None:
    tmp, state, sock = dirs
    boot = boot_partition(tmp, state, "ws://127.0.0.1:1", replace={"confirmations = 5 ": "confirmations = -5 ",
                                                                 "enabled = true  ": "enabled = false "})
    svc = start_like_systemd(boot, state, tmp / "passphrase", sock, watchdog_usec=30_000_000)
    rc = svc.proc.wait(60)
    time.sleep(0.1)
    err = svc.stderr_after_exit()
    svc.notify.close()
    assert rc == 2
    assert err.strip() == "edge: config: ingest.confirmations: must be >= 0, got -5"  # one journal line
    texts = [n.text for n in svc.notify.from_pid(svc.proc.pid)]
    assert texts == ["STATUS=edge: config: ingest.confirmations: must be >= 0, got -5"]  # never READY=1
    assert not (state / "edge.sqlite").exists()  # never started half-configured


def test_invalid_boot_config_with_gpio_shows_the_fault_before_exit(dirs: tuple[Path, Path, str]) -> None:
    tmp, state, sock = dirs
    boot = boot_partition(tmp, state, "ws://127.0.0.1:1", replace={'traces = "auto"': 'traces = "sometimes"',
                                                                 'pin_factory = ""': 'pin_factory = "mock"'})
    svc = start_like_systemd(boot, state, tmp / "passphrase", sock, watchdog_usec=30_000_000)
    t0 = time.monotonic()
    rc = svc.proc.wait(60)
    held = time.monotonic() - t0
    err = svc.stderr_after_exit()
    svc.notify.close()
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert lines[-1] == "edge: config: ingest.traces: must be one of auto, trace_block, debug_trace, off; " \
                        "got 'sometimes'"
    assert "fault blink for 10 s before exit" in err and "gpio: status LED GPIO17" in err
    assert held >= 10.0  # the LED blinked fast for FAULT_HOLD_S before the process ended
    assert [n.text for n in svc.notify.from_pid(svc.proc.pid)] == [f"STATUS={lines[-1]}"]


# -- in process: what `edge run` runs (edge.appliance.runner.run_appliance) --------------------


async def test_run_appliance_ready_watchdog_button_checkpoint_and_long_press_stop(
        chain_factory: Any, dirs: tuple[Path, Path, str]) -> None:
    import asyncio

    from gpiozero.pins.mock import MockFactory

    from edge.appliance.notify import Notifier
    from edge.appliance.runner import run_appliance
    from edge.agent import Agent
    from tests.conftest import make_config

    tmp, state, sock = dirs
    chain = await chain_factory(extra_args=("--no-mining",))
    await chain.rpc("anvil_mine", hex(40))
    cfg = make_config(chain, state / "edge.sqlite", checkpoint={"every_blocks": 1000}, metrics={"port": 0},
                      gpio={"enabled": True, "pin_factory": "mock", "hold_s": 0.5})
    factory = MockFactory()
    notify = NotifySocket(sock)
    try:
        async with Agent(cfg, score=False) as agent:
            task = asyncio.create_task(run_appliance(
                agent, notifier=Notifier({"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "1000000"}),
                pin_factory=factory, metrics_power=None))
            await eventually("block 40 and the checkpoint stage",
                             lambda: agent.stats.cursor == 40 and agent.checkpointer is not None, 30.0)
            # the panel follows once a second: synced is steady on
            await eventually("the status LED steady on", lambda: factory.pin(17).state is True, 30.0)
            button = factory.pin(22)
            button.drive_low()
            await asyncio.sleep(0.15)  # the press itself: longer than the 0.05 s debounce, shorter than the hold
            button.drive_high()  # short press: an on-demand checkpoint up to the confirmed tip
            cp = agent.checkpointer
            assert cp is not None
            await eventually("the on-demand checkpoint", lambda: cp.stats.on_demand == 1, 30.0)
            assert cp.stats.on_demand == 1 and cp.stats.last_to == 37
            assert not task.done()
            button.drive_low()  # long press (held 0.5 s): a clean stop
            done, _ = await asyncio.wait({task}, timeout=30)
            assert done and task.cancelled()
            button.drive_high()
    finally:
        notify.close()
        factory.close()
    texts = [n.text for n in notify.notes]
    assert texts[0].startswith("READY=1\nSTATUS=edge ") and "WATCHDOG=1" in texts
    assert texts[-1] == "STOPPING=1"


async def test_run_appliance_shows_the_fault_on_a_fatal_agent_error(chain_factory: Any,
                                                                    dirs: tuple[Path, Path, str]) -> None:
    from gpiozero.pins.mock import MockFactory

    from edge.appliance.notify import Notifier
    from edge.appliance.runner import run_appliance
    from edge.errors import CryptoError
    from edge.agent import Agent
    from tests.conftest import make_config

    tmp, state, sock = dirs
    chain = await chain_factory(extra_args=("--no-mining",))
    # a fatal error at run time: forwarding is on but the keystore passphrase cannot be read
    # (a wrong chain id is no longer fatal: it is an alarm and a wait)
    nowhere = "http://127.0.0.1:9"
    cfg = make_config(chain, state / "edge.sqlite", metrics={"enabled": False},
                      gpio={"enabled": True, "pin_factory": "mock"},
                      device={"keystore": "device.json", "passphrase": "env:EDGE_TEST_NO_SUCH_VARIABLE"},
                      forward={"enabled": True, "auditors": ["0x02" + "11" * 32],
                               "testnets": [{"url": nowhere, "chain_id": 7301, "store": "0x" + "22" * 20}],
                               "mainnet": {"url": nowhere, "chain_id": 7401, "anchor": "0x" + "33" * 20}})
    factory = MockFactory()
    notify = NotifySocket(sock)
    try:
        async with Agent(cfg, score=False) as agent:
            with pytest.raises(CryptoError, match=r"environment variable EDGE_TEST_NO_SUCH_VARIABLE is not set"):
                await run_appliance(agent, notifier=Notifier({"NOTIFY_SOCKET": sock}), pin_factory=factory,
                                    metrics_power=None, fault_hold_s=0.55)
        changes = [s.state for s in factory.pin(17).states]
        gaps = [s.timestamp for s in factory.pin(17).states][-5:-1]  # last fast-blink periods before off
    finally:
        notify.close()
        factory.close()
    assert changes[-1] is False and len(changes) >= 6
    assert all(0.07 < g < 0.25 for g in gaps), gaps  # fast blink (0.1 s), not slow (1 s)
    texts = [n.text for n in notify.notes]
    assert texts[0].startswith("READY=1") and texts[-1] == "STOPPING=1"
    assert any(t.startswith("STATUS=edge: passphrase: environment variable EDGE_TEST_NO_SUCH_VARIABLE") for t in texts)
