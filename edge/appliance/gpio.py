"""The front panel of the appliance: status LED, alert LED or buzzer, and a button (gpiozero).

Pins are BCM numbers from ``[gpio]`` (:class:`edge.config.GpioConfig`); -1 = not fitted.

- **Status LED**: steady on = synced, slow blink (1 s on / 1 s off) = catching up, fast
  blink (0.1 s / 0.1 s) = fault. Blinks run in gpiozero's own blink thread, so the fault
  blink goes on even while the event loop is busy.
- **Alert LED / buzzer**: :meth:`StatusPanel.alert` (a high-risk contract, a fleet
  divergence) gives 5 short pulses (0.1 s / 0.1 s); the LED then stays lit until
  :meth:`StatusPanel.clear_alert`. A buzzer only beeps the 5 pulses (a buzzer that
  sounds until someone walks over helps no one).
- **Button** (to ground, internal pull-up): a short press calls ``on_checkpoint``; held
  for ``hold_s`` it calls ``on_shutdown`` (once, at the hold time, not on release)
  and the release does not count as a short press. gpiozero calls these from its own
  threads; they are handed to the event loop with ``loop.call_soon_threadsafe``, and a
  callback returning an awaitable is run as a task.

The pin factory is chosen at start like gpiozero does (``pin_factory = ""``: the one set
in ``gpiozero.Device.pin_factory`` or ``$GPIOZERO_PIN_FACTORY``, else gpiozero's default
order lgpio, rpigpio, pigpio, native); ``"mock"`` is gpiozero's ``MockFactory``; other
names are gpiozero's entry points. Where no GPIO exists (``BadPinFactory``, a missing
driver, a board that is not a Pi, a pin already in use) the panel disables itself with
ONE log line and every call is a no-op: the agent's work never depends on its LEDs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, get_args

from edge.config import GpioConfig
from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.config import Config
    from edge.ingest.stage import IngestStats

__all__ = [
    "ALERT_PULSE",
    "ALERT_PULSES",
    "AgentLike",
    "Blink",
    "LedState",
    "PATTERNS",
    "StatusPanel",
    "follow",
    "make_pin_factory",
    "state_from",
]

log = logging.getLogger("edge.gpio")

LedState = Literal["off", "synced", "catching_up", "fault"]
"""What the status LED shows."""

Callback = Callable[[], object]
"""A button callback: a plain function, or one returning an awaitable (run as a task)."""


@dataclass(frozen=True, slots=True)
class Blink:
    """A blink pattern: seconds on, seconds off."""

    on_s: float
    off_s: float


PATTERNS: Final[dict[LedState, Blink | bool]] = {
    "off": False,
    "synced": True,
    "catching_up": Blink(1.0, 1.0),
    "fault": Blink(0.1, 0.1),
}
"""Status LED pattern per state: True = steady on, False = off, or a :class:`Blink`."""

ALERT_PULSE: Final = Blink(0.1, 0.1)
ALERT_PULSES: Final = 5


def make_pin_factory(name: str) -> Any:
    """The gpiozero pin factory called ``name`` (see the module doc for the names).

    Returns:
        A gpiozero ``Factory``. For ``""`` it is the process-wide
        ``gpiozero.Device.pin_factory`` (set up by gpiozero if unset); for the other names
        a new factory, which the caller must close.

    Raises:
        gpiozero.BadPinFactory, ImportError, OSError, RuntimeError: no such factory or
        no GPIO on this machine (the caller turns these into "GPIO disabled").
    """
    from gpiozero import Device

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gpiozero's PinFactoryFallback chatter: one line is ours
        if name == "":
            Device.ensure_pin_factory()
            return Device.pin_factory
        if name == "mock":
            from gpiozero.pins.mock import MockFactory

            return MockFactory()
        for ep in entry_points(group="gpiozero_pin_factories"):
            if ep.name == name:
                return ep.load()()
    from gpiozero.exc import BadPinFactory

    raise BadPinFactory(f"no gpiozero pin factory named {name!r}")


class StatusPanel:
    """Status LED, alert LED or buzzer, and button, from ``[gpio]``. An async context manager.

    Args:
        cfg: the ``[gpio]`` section. ``enabled = false``: nothing is touched (no-op).
        on_checkpoint: called on the event loop after a short press.
        on_shutdown: called on the event loop once the button is held ``hold_s``.
        factory: a gpiozero pin factory to use instead of ``cfg.pin_factory`` (tests).

    Attributes:
        enabled: True while the panel drives real (or mock) pins.
        factory: the pin factory in use (None when disabled).
        state: the status LED state last set (``"off"`` at start).
        alerting: True from :meth:`alert` until :meth:`clear_alert`.
        disabled_reason: why the panel is disabled ("" when enabled).

    Methods never raise for hardware reasons; :meth:`set_state` raises EdgeError for an
    unknown state name (a programming error).
    """

    def __init__(
        self,
        cfg: GpioConfig,
        *,
        on_checkpoint: Callback | None = None,
        on_shutdown: Callback | None = None,
        factory: Any = None,
    ) -> None:
        self.cfg = cfg
        self.on_checkpoint = on_checkpoint
        self.on_shutdown = on_shutdown
        self.factory: Any = factory
        self.enabled = False
        self.state: LedState = "off"
        self.alerting = False
        self.disabled_reason = ""
        self._own_factory = False
        self._status: Any = None
        self._alert: Any = None
        self._buzzer: Any = None
        self._button: Any = None
        self._held = False
        self._latch: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future[Any]] = set()

    # -- life cycle -----------------------------------------------------------------

    async def __aenter__(self) -> StatusPanel:
        self._loop = asyncio.get_running_loop()
        if not self.cfg.enabled:
            self.disabled_reason = "gpio.enabled = false"
            return self
        try:
            self._open()
        except Exception as e:  # noqa: BLE001 - any driver failure means "no GPIO here"
            self._close_devices()
            self.disabled_reason = f"{type(e).__name__}: {e}"
            log.warning("gpio: disabled, no usable GPIO here (%s); status LED, alert and button are off",
                        self.disabled_reason)
            return self
        self.enabled = True
        log.info("gpio: status LED %s, alert LED %s, buzzer %s, button %s (%s)", *(
            _pin_text(p) for p in (self.cfg.status_led, self.cfg.alert_led, self.cfg.buzzer, self.cfg.button)),
            type(self.factory).__name__)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._latch is not None:
            self._latch.cancel()
            self._latch = None
        for t in list(self._tasks):
            t.cancel()
        self._close_devices()
        self.enabled = False

    def _open(self) -> None:
        from gpiozero import LED, Button, Buzzer

        if self.factory is None:
            self.factory = make_pin_factory(self.cfg.pin_factory)
            self._own_factory = self.cfg.pin_factory != ""
        f, c = self.factory, self.cfg
        if c.status_led >= 0:
            self._status = LED(c.status_led, pin_factory=f)
        if c.alert_led >= 0:
            self._alert = LED(c.alert_led, pin_factory=f)
        if c.buzzer >= 0:
            self._buzzer = Buzzer(c.buzzer, pin_factory=f)
        if c.button >= 0:
            b = Button(c.button, pull_up=True, bounce_time=0.05, hold_time=c.hold_s, pin_factory=f)
            b.when_pressed = self._pressed
            b.when_held = self._held_down
            b.when_released = self._released
            self._button = b

    def _close_devices(self) -> None:
        for name in ("_button", "_buzzer", "_alert", "_status"):
            dev = getattr(self, name)
            if dev is None:
                continue
            try:
                if name != "_button":
                    dev.off()
                dev.close()
            except Exception as e:  # noqa: BLE001 - closing must not mask the real exit reason
                log.debug("gpio: closing %s: %s", name[1:], e)
            setattr(self, name, None)
        if self._own_factory and self.factory is not None:
            try:
                self.factory.close()
            except Exception as e:  # noqa: BLE001
                log.debug("gpio: closing the pin factory: %s", e)
            self._own_factory = False

    # -- status LED -----------------------------------------------------------------

    def set_state(self, state: LedState) -> None:
        """Show ``state`` on the status LED (steady / slow blink / fast blink / off).

        Idempotent: setting the current state again changes nothing (a running blink is
        not restarted). Raises EdgeError for an unknown state name.
        """
        if state not in PATTERNS:
            raise EdgeError(f"gpio: unknown LED state {state!r}; one of {', '.join(get_args(LedState))}")
        if state == self.state:
            return
        self.state = state
        led = self._status
        if led is None:
            return
        pattern = PATTERNS[state]
        if pattern is True:
            led.on()
        elif pattern is False:
            led.off()
        else:
            assert isinstance(pattern, Blink)
            led.blink(on_time=pattern.on_s, off_time=pattern.off_s, background=True)

    # -- alert --------------------------------------------------------------------------

    def alert(self, reason: str) -> None:
        """Raise the alert: 5 short pulses, then the alert LED stays lit (buzzer: 5 beeps).

        Args:
            reason: logged as one warning line (``alert: <reason>``), even when disabled.
        Call from the event loop. A new alert while one is lit pulses again.
        """
        log.warning("alert: %s", reason)
        self.alerting = True
        if self._latch is not None:
            self._latch.cancel()
            self._latch = None
        p, n = ALERT_PULSE, ALERT_PULSES
        if self._buzzer is not None:
            self._buzzer.beep(on_time=p.on_s, off_time=p.off_s, n=n, background=True)
        if self._alert is not None:
            self._alert.blink(on_time=p.on_s, off_time=p.off_s, n=n, background=True)
            loop = self._loop or asyncio.get_running_loop()
            self._latch = loop.call_later(n * (p.on_s + p.off_s), self._latch_on)

    def _latch_on(self) -> None:
        self._latch = None
        if self.alerting and self._alert is not None:
            self._alert.on()

    def clear_alert(self) -> None:
        """Turn the alert LED (and buzzer) off. No-op when no alert is lit."""
        if not self.alerting:
            return
        self.alerting = False
        if self._latch is not None:
            self._latch.cancel()
            self._latch = None
        for dev in (self._alert, self._buzzer):
            if dev is not None:
                dev.off()

    # -- button (gpiozero threads) --------------------------------------------------------

    def _pressed(self) -> None:
        self._held = False

    def _held_down(self) -> None:
        self._held = True
        log.info("gpio: button held %.1f s: shutdown requested", self.cfg.hold_s)
        self._post(self.on_shutdown)

    def _released(self) -> None:
        if self._held:
            return
        log.info("gpio: button pressed: checkpoint requested")
        self._post(self.on_checkpoint)

    def _post(self, cb: Callback | None) -> None:
        if cb is None or self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._invoke, cb)
        except RuntimeError:  # the loop is closed: the agent is stopping anyway
            pass

    def _invoke(self, cb: Callback) -> None:
        try:
            res = cb()
        except Exception:  # a button must never take the agent down
            log.exception("gpio: button callback failed")
            return
        if inspect.isawaitable(res):
            fut = asyncio.ensure_future(res)
            self._tasks.add(fut)
            fut.add_done_callback(self._task_done)

    def _task_done(self, fut: asyncio.Future[Any]) -> None:
        self._tasks.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            log.error("gpio: button action failed: %s", fut.exception())


def _pin_text(pin: int) -> str:
    return f"GPIO{pin}" if pin >= 0 else "-"


class AgentLike(Protocol):
    """What :func:`state_from` and :func:`follow` read of :class:`edge.agent.Agent`."""

    @property
    def cfg(self) -> Config:
        """The agent's config (``ingest.confirmations`` is used)."""

    @property
    def stats(self) -> IngestStats:
        """Live ingest counters."""

    @property
    def scorer(self) -> Any:
        """The scoring stage (``.stats.flagged``) or None."""


def state_from(agent: AgentLike) -> LedState:
    """The status LED state for the agent's live counters.

    - ``fault``: the node is unreachable (not connected after a failed attempt: the
      ingest stats hold a ``last_error`` or a reconnect count) or ingest is paused
      because the outbox is full;
    - ``catching_up``: not connected yet at start-up, or ``lag > ingest.confirmations + 2``
      blocks;
    - ``synced`` otherwise.
    """
    s = agent.stats
    if s.paused:
        return "fault"
    if not s.connected:
        return "fault" if (s.reconnects or s.last_error) else "catching_up"
    if s.lag > agent.cfg.ingest.confirmations + 2:
        return "catching_up"
    return "synced"


async def follow(agent: AgentLike, panel: StatusPanel, every_s: float = 1.0) -> None:
    """Keep the panel in step with the agent until cancelled.

    Every ``every_s`` seconds: set the status LED from :func:`state_from`, and raise the
    alert when the scorer's ``flagged`` count (high-risk contracts), the count of blocks
    sealed by a stranger (``foreign_sealers``), the count of Clique rule violations
    (``chain_alarms``, EIP-225), the fleet's divergence count or the analysis stage's
    ``alerted`` count (contracts whose capability flags intersect ``[capabilities]
    alert_flags``; the alert line is the stage's sentence) has grown since the last look.
    """
    flagged = foreign = diverged = chain_alarms = cap_alerts = 0
    while True:
        panel.set_state(state_from(agent))
        fleet = getattr(agent, "fleet", None)
        now_diverged = int(fleet.stats.divergences) if fleet is not None else 0
        if now_diverged > diverged:
            panel.alert(f"fleet divergence: this device's root differs from a quorum's ({now_diverged} so far)")
        diverged = now_diverged
        now_flagged = int(agent.scorer.stats.flagged) if agent.scorer is not None else 0
        if now_flagged > flagged:
            panel.alert(f"{now_flagged - flagged} high-risk contract(s) flagged ({now_flagged} since start)")
        flagged = now_flagged
        analysis = getattr(agent, "analysis", None)
        now_cap = int(analysis.stats.alerted) if analysis is not None else 0
        if analysis is not None and now_cap > cap_alerts:
            more = now_cap - cap_alerts - 1
            panel.alert(f"capability {analysis.stats.last_alert}" + (f" (and {more} more)" if more else ""))
        cap_alerts = now_cap
        now_alarms = agent.stats.chain_alarms
        now_foreign = agent.stats.foreign_sealers
        if now_alarms > chain_alarms:
            panel.alert(f"{now_alarms - chain_alarms} Clique rule violation(s); latest: {agent.stats.last_alarm}")
        elif now_foreign > foreign:
            panel.alert(f"{now_foreign - foreign} block(s) sealed by a signer outside poa.authorities")
        foreign, chain_alarms = now_foreign, now_alarms
        await asyncio.sleep(every_s)
