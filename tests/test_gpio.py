"""The front panel on gpiozero's MockFactory: pin state histories of every LED state, the
alert pulses, both button presses, and the no-GPIO path."""

from __future__ import annotations

import asyncio
import logging
import statistics
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import LED, Device
from gpiozero.pins.mock import MockFactory

from edge.appliance.gpio import StatusPanel, follow, state_from
from edge.appliance.runner import gpio_section, load_config_or_fault, show_fault
from edge.config import GpioConfig, parse_config
from edge.errors import ConfigError, EdgeError
from edge.agent import Agent

STATUS, ALERT, BUTTON, BUZZER = 17, 27, 22, 23
TOL = 0.15  # seconds: a thread or timer may wake this late on a busy 2-core machine


def cfg(**kw: Any) -> GpioConfig:
    base: dict[str, Any] = {"enabled": True, "pin_factory": "mock", "status_led": STATUS,
                            "alert_led": ALERT, "button": BUTTON, "hold_s": 0.5}
    base.update(kw)
    return GpioConfig(**base)


def history(factory: MockFactory, pin: int) -> list[tuple[float, bool]]:
    """(seconds since the previous change, new state) for every change of a mock pin."""
    return [(round(s.timestamp, 3), bool(s.state)) for s in factory.pin(pin).states]


def assert_periods(dts: list[float], want: float) -> None:
    """Durations of a timed pattern: never early, median on time, none far late (thread
    wake-ups on a busy 2-core machine are late, never early)."""
    assert dts, dts
    assert all(dt >= want - 0.03 for dt in dts), (want, dts)
    assert abs(statistics.median(dts) - want) < 0.05, (want, dts)
    assert all(dt <= want + max(0.15, want / 4) for dt in dts), (want, dts)


def assert_blinks(h: list[tuple[float, bool]], on_s: float, off_s: float, min_changes: int) -> None:
    """The history starts off, then alternates on/off with the given durations."""
    assert h[0][1] is False
    changes = h[1:]
    assert len(changes) >= min_changes, h
    assert [st for _, st in changes] == [i % 2 == 0 for i in range(len(changes))], h
    assert changes[0][0] < TOL, h  # the blink starts at once
    ends_of_on = [dt for i, (dt, _) in enumerate(changes[1:]) if i % 2 == 0]
    ends_of_off = [dt for i, (dt, _) in enumerate(changes[1:]) if i % 2 == 1]
    assert_periods(ends_of_on, on_s)
    if ends_of_off:
        assert_periods(ends_of_off, off_s)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


class Calls:
    """Records button callbacks and the thread they ran in."""

    def __init__(self) -> None:
        self.checkpoint: list[int] = []
        self.shutdown: list[int] = []
        self.called = asyncio.Event()  # set by each callback (they run on the event loop)

    def on_checkpoint(self) -> None:
        self.checkpoint.append(threading.get_ident())
        self.called.set()

    def on_shutdown(self) -> None:
        self.shutdown.append(threading.get_ident())
        self.called.set()


async def _turns(n: int = 3) -> None:
    """Let the event loop run ``n`` turns (callbacks posted with call_soon_threadsafe run)."""
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.fixture
async def panel(factory: MockFactory) -> AsyncIterator[tuple[StatusPanel, Calls]]:
    calls = Calls()
    async with StatusPanel(cfg(), on_checkpoint=calls.on_checkpoint, on_shutdown=calls.on_shutdown,
                           factory=factory) as p:
        assert p.enabled
        yield p, calls


# -- status LED -----------------------------------------------------------------------


async def test_synced_is_steady_on_and_off_turns_it_off(panel: tuple[StatusPanel, Calls],
                                                        factory: MockFactory) -> None:
    p, _ = panel
    assert history(factory, STATUS) == [(0.0, False)]
    p.set_state("synced")
    await asyncio.sleep(0.4)
    p.set_state("synced")
    h = history(factory, STATUS)
    assert len(h) == 2 and h[1][1] is True and h[1][0] < TOL
    await asyncio.sleep(0.3)
    p.set_state("off")
    h = history(factory, STATUS)
    assert [st for _, st in h] == [False, True, False]
    assert 0.69 <= h[2][0] < 0.7 + TOL


async def test_catching_up_is_a_slow_blink_not_restarted_by_repeated_calls(
        panel: tuple[StatusPanel, Calls], factory: MockFactory) -> None:
    p, _ = panel
    for _ in range(13):  # the follow loop sets the same state every second; here every 0.25 s
        p.set_state("catching_up")
        await asyncio.sleep(0.25)
    h = history(factory, STATUS)
    # 3.25 s: on 0-1, off 1-2, on 2-3, off from 3 (a restart on each call would keep it on)
    assert_blinks(h, 1.0, 1.0, min_changes=4)
    assert p.state == "catching_up"


async def test_fault_is_a_fast_blink(panel: tuple[StatusPanel, Calls], factory: MockFactory) -> None:
    p, _ = panel
    p.set_state("fault")
    await asyncio.sleep(0.5)
    p.set_state("fault")
    await asyncio.sleep(0.55)
    h = history(factory, STATUS)
    assert_blinks(h, 0.1, 0.1, min_changes=9)


async def test_switching_states_stops_the_blink(panel: tuple[StatusPanel, Calls], factory: MockFactory) -> None:
    p, _ = panel
    p.set_state("fault")
    await asyncio.sleep(0.35)
    p.set_state("synced")
    n = len(history(factory, STATUS))
    await asyncio.sleep(0.4)
    h = history(factory, STATUS)
    assert len(h) == n and h[-1][1] is True  # steady: no more changes
    with pytest.raises(EdgeError, match="unknown LED state 'blinky'"):
        p.set_state("blinky")  # type: ignore[arg-type]


# -- alert ----------------------------------------------------------------------------


async def test_alert_pulses_five_times_then_stays_lit_until_cleared(
        panel: tuple[StatusPanel, Calls], factory: MockFactory, caplog: pytest.LogCaptureFixture) -> None:
    p, _ = panel
    with caplog.at_level(logging.WARNING, logger="edge.gpio"):
        p.alert("contract 0xabc scored 0.97")
    assert "alert: contract 0xabc scored 0.97" in caplog.text
    await asyncio.sleep(1.5)
    h = history(factory, ALERT)
    assert [st for _, st in h] == [False] + [True, False] * 5 + [True], h
    assert_periods([dt for dt, _ in h[2:11]], 0.1)  # the 9 inner pulse edges are 0.1 s apart
    assert p.alerting
    await asyncio.sleep(0.3)
    assert len(history(factory, ALERT)) == 12  # lit, steady
    p.clear_alert()
    h = history(factory, ALERT)
    assert h[-1][1] is False and not p.alerting
    assert history(factory, STATUS) == [(0.0, False)]  # the status LED is not touched


async def test_clear_during_the_pulses_leaves_it_off(panel: tuple[StatusPanel, Calls], factory: MockFactory) -> None:
    p, _ = panel
    p.alert("fleet divergence at checkpoint 7")
    await asyncio.sleep(0.25)
    p.clear_alert()
    n = len(history(factory, ALERT))
    await asyncio.sleep(1.2)  # past the time the latch would have fired
    h = history(factory, ALERT)
    assert len(h) == n and h[-1][1] is False


async def test_buzzer_beeps_five_times_and_goes_quiet(factory: MockFactory) -> None:
    async with StatusPanel(cfg(alert_led=-1, buzzer=BUZZER), factory=factory) as p:
        p.alert("high-risk contract")
        await asyncio.sleep(1.4)
        h = history(factory, BUZZER)
        assert [st for _, st in h] == [False] + [True, False] * 5, h
        assert p.alerting


# -- button ---------------------------------------------------------------------------


async def test_short_press_requests_one_checkpoint_on_the_loop(
        panel: tuple[StatusPanel, Calls], factory: MockFactory) -> None:
    _, calls = panel
    pin = factory.pin(BUTTON)
    assert pin.state is True  # pulled up: released
    pin.drive_low()
    pin.drive_high()
    await asyncio.wait_for(calls.called.wait(), 10.0)
    assert calls.checkpoint == [threading.get_ident()]  # ran on the event loop's thread
    assert calls.shutdown == []


async def test_hold_requests_shutdown_once_at_the_hold_time_and_no_checkpoint(
        panel: tuple[StatusPanel, Calls], factory: MockFactory) -> None:
    _, calls = panel
    pin = factory.pin(BUTTON)
    loop = asyncio.get_running_loop()
    pressed = loop.time()
    pin.drive_low()
    await asyncio.wait_for(calls.called.wait(), 10.0)  # gpiozero's hold thread fires it
    assert loop.time() - pressed >= 0.5  # not before hold_s = 0.5 (a lower bound only)
    assert calls.shutdown == [threading.get_ident()]  # fired while still held, posted to the loop
    pin.drive_high()  # the release of a hold is no short press
    await _turns()
    assert calls.shutdown == [threading.get_ident()]
    assert calls.checkpoint == []


async def test_async_button_callback_runs_as_a_task(factory: MockFactory) -> None:
    done = asyncio.Event()

    async def checkpoint() -> None:
        done.set()

    async with StatusPanel(cfg(), on_checkpoint=checkpoint, factory=factory):
        factory.pin(BUTTON).drive_low()
        factory.pin(BUTTON).drive_high()
        await asyncio.wait_for(done.wait(), 2.0)


# -- no GPIO --------------------------------------------------------------------------


async def test_no_gpio_disables_the_panel_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-board")  # gpiozero raises BadPinFactory
    calls = Calls()
    with caplog.at_level(logging.DEBUG, logger="edge.gpio"):
        async with StatusPanel(cfg(pin_factory=""), on_checkpoint=calls.on_checkpoint) as p:
            assert not p.enabled and p.factory is None
            assert "BadPinFactory" in p.disabled_reason
            p.set_state("fault")
            p.set_state("synced")
            p.alert("high-risk contract")
            p.clear_alert()
            assert p.state == "synced"
    lines = [r for r in caplog.records if r.name == "edge.gpio"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]  # disabled + the alert reason
    assert "gpio: disabled" in lines[0].getMessage() and "no-such-board" in lines[0].getMessage()


async def test_a_pin_in_use_disables_the_panel_and_releases_its_other_pins(
        factory: MockFactory, caplog: pytest.LogCaptureFixture) -> None:
    other = LED(BUTTON, pin_factory=factory)  # someone else holds the button's pin
    try:
        async with StatusPanel(cfg(), factory=factory) as p:
            assert not p.enabled and "GPIOPinInUse" in p.disabled_reason
        LED(STATUS, pin_factory=factory).close()  # the status pin was released again
    finally:
        other.close()
    assert len([r for r in caplog.records if "gpio: disabled" in r.getMessage()]) == 1


async def test_disabled_in_config_touches_nothing(factory: MockFactory, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="edge.gpio"):
        async with StatusPanel(cfg(enabled=False), factory=factory) as p:
            p.set_state("fault")
            await asyncio.sleep(0.25)
            assert not p.enabled
    assert history(factory, STATUS) == [(0.0, False)]
    assert caplog.records == []


# -- fault blink on a bad config --------------------------------------------------------


async def test_show_fault_blinks_fast_then_releases(factory: MockFactory) -> None:
    await show_fault(cfg(), "edge: config: ingest.confirmations: must be >= 0, got -1", hold_s=0.55,
                     pin_factory=factory)
    h = history(factory, STATUS)
    assert_blinks(h[:-1], 0.1, 0.1, min_changes=5)
    assert h[-1][1] is False  # off after exit
    await show_fault(cfg(enabled=False), "x", hold_s=5.0, pin_factory=factory)  # returns at once
    assert history(factory, STATUS) == h


def test_invalid_config_shows_the_fault_then_raises_naming_the_key(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "edge.toml"
    bad.write_text('[node]\nws_url = "ws://127.0.0.1:1"\n[ingest]\nconfirmations = -1\n'
                   '[gpio]\nenabled = true\npin_factory = "mock"\n')
    assert gpio_section(bad) == GpioConfig(enabled=True, pin_factory="mock")
    with pytest.raises(ConfigError, match=r"ingest\.confirmations: must be >= 0, got -1"):
        load_config_or_fault(bad, hold_s=0.3)
    assert "fault blink for 0 s before exit" in caplog.text and "ingest.confirmations" in caplog.text
    caplog.clear()
    bad.write_text('[node]\nws_url = "ws://127.0.0.1:1"\n[gpio]\nenabled = true\nbutton = 99\n')
    assert gpio_section(bad) is None  # the pins themselves are wrong: nothing is driven
    with pytest.raises(ConfigError, match=r"gpio\.button: must be a BCM pin"):
        load_config_or_fault(bad, hold_s=0.3)
    assert "fault blink" not in caplog.text


# -- following the agent -----------------------------------------------------------------


def _agent(tmp_path: Path, *, score: bool = False) -> Agent:
    c = parse_config({"node": {"ws_url": "ws://127.0.0.1:1"}, "ingest": {"confirmations": 5},
                      "outbox": {"path": str(tmp_path / "edge.sqlite")}})
    return Agent(c, score=score)


def test_state_from_the_agent_counters(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    s = agent.stats
    assert state_from(agent) == "catching_up"  # starting: not connected yet, no failure
    s.reconnects, s.last_error = 1, "node ws://127.0.0.1:1: connection refused"
    assert state_from(agent) == "fault"
    s.connected, s.head, s.cursor = True, 100, 100
    assert state_from(agent) == "synced"
    s.cursor = 93  # lag 7 = confirmations + 2
    assert state_from(agent) == "synced"
    s.cursor = 92  # lag 8
    assert state_from(agent) == "catching_up"
    s.paused = True  # outbox full
    assert state_from(agent) == "fault"


async def test_follow_sets_the_led_and_alerts_on_new_high_risk_contracts(
        tmp_path: Path, factory: MockFactory) -> None:
    async with _agent(tmp_path, score=True) as agent, StatusPanel(cfg(), factory=factory) as p:
        s = agent.stats
        s.connected, s.head, s.cursor = True, 50, 50
        task = asyncio.create_task(follow(agent, p, every_s=0.05))
        await asyncio.sleep(0.2)
        assert p.state == "synced" and not p.alerting
        assert history(factory, ALERT) == [(0.0, False)]
        agent.scorer.stats.flagged += 1
        await asyncio.sleep(0.2)
        assert p.alerting
        s.connected = False
        s.reconnects = 1
        await asyncio.sleep(0.2)
        assert p.state == "fault"
        task.cancel()
        await asyncio.sleep(1.2)
        assert [st for _, st in history(factory, ALERT)] == [False] + [True, False] * 5 + [True]


async def test_a_clique_rule_violation_lights_the_alert(tmp_path: Path) -> None:
    """follow() raises the alert when the ingest stage counts a new Clique violation."""
    from types import SimpleNamespace

    from edge.config import parse_config
    from edge.ingest.stage import IngestStats

    alerts: list[str] = []
    seen = asyncio.Event()

    class Panel:
        def set_state(self, state: str) -> None:
            pass

        def alert(self, reason: str) -> None:
            alerts.append(reason)
            seen.set()

    stats = IngestStats(connected=True)
    agent = SimpleNamespace(cfg=parse_config({"node": {"ws_url": "ws://127.0.0.1:1"}}, base_dir=tmp_path),
                            stats=stats, scorer=None)
    task = asyncio.create_task(follow(agent, Panel(), every_s=0.01))  # type: ignore[arg-type]
    try:
        stats.chain_alarms, stats.foreign_sealers = 1, 1
        stats.last_alarm = "block 6: unauthorized_signer (0xabc): not one of 2 signers"
        await asyncio.wait_for(seen.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert alerts == ["1 Clique rule violation(s); latest: block 6: unauthorized_signer (0xabc): not one of 2 signers"]


async def test_follow_alerts_on_a_capability_flag_with_its_sentence(
        tmp_path: Path, factory: MockFactory, caplog: pytest.LogCaptureFixture) -> None:
    async with _agent(tmp_path, score=True) as agent, StatusPanel(cfg(), factory=factory) as p:
        assert agent.analysis is not None
        raised = asyncio.Event()
        original = p.alert

        def alert(reason: str) -> None:
            original(reason)
            raised.set()

        p.alert = alert  # type: ignore[method-assign]
        task = asyncio.create_task(follow(agent, p, every_s=0.01))
        try:
            agent.analysis.stats.alerted = 2
            agent.analysis.stats.last_alert = "is_mintable: contract 0xab (chain 7201, block 3): owner-only mint"
            with caplog.at_level(logging.WARNING):
                await asyncio.wait_for(raised.wait(), 30)
        finally:
            task.cancel()
        assert p.alerting
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert: capability")]
        assert lines == ["alert: capability is_mintable: contract 0xab (chain 7201, block 3): owner-only mint"
                         " (and 1 more)"]
