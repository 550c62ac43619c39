"""``edge run`` as a systemd service: the agent with its panel, metrics and sd_notify.

:func:`run_appliance` wraps :meth:`edge.agent.Agent.run`: it starts the GPIO panel
(:mod:`edge.appliance.gpio`) and the metrics server (:mod:`edge.appliance.metrics`),
sends ``READY=1`` once they and the agent are up, pings ``WATCHDOG=1`` from the event
loop, puts the statistics line in ``STATUS=`` and sends ``STOPPING=1`` on the way out.
Every side task runs in one TaskGroup with the agent, so a failure in any of them stops
the service with that error (systemd then restarts it) instead of dying silently.

:func:`load_config_or_fault` loads the boot-partition config; when it is invalid and its
``[gpio]`` section is usable and enabled, the status LED shows the fault blink for
:data:`FAULT_HOLD_S` seconds before the ConfigError goes up to the CLI (one line naming
the key on stderr, exit status 2; systemd restarts the unit after ``RestartSec``).
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from edge import __version__
from edge.aio import first_error
from edge.appliance.gpio import StatusPanel, follow
from edge.appliance.metrics import Metrics
from edge.appliance.notify import Notifier
from edge.config import Config, GpioConfig, load_config, parse_config
from edge.errors import ConfigError, EdgeError

if TYPE_CHECKING:
    from edge.agent import Agent

__all__ = [
    "FAULT_HOLD_S",
    "gpio_section",
    "load_config_or_fault",
    "request_checkpoint",
    "run_appliance",
    "show_fault",
]

log = logging.getLogger("edge.appliance")

FAULT_HOLD_S: Final = 10.0
"""Seconds the fault blink is shown before a fatal error ends the process."""


def gpio_section(path: Path | str) -> GpioConfig | None:
    """The ``[gpio]`` section of a config file that may be invalid elsewhere.

    Returns None when the file is unreadable, is not TOML, has no ``[gpio]`` table or
    that table is itself invalid (then the pins are unknown and nothing is driven).
    """
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    section = raw.get("gpio")
    if not isinstance(section, dict):
        return None
    try:  # [node] is required; a placeholder lets [gpio] be checked on its own
        return parse_config({"node": {"ws_url": "ws://localhost"}, "gpio": section}).gpio
    except ConfigError:
        return None


async def show_fault(gpio: GpioConfig | None, message: str, *, hold_s: float = FAULT_HOLD_S,
                     notifier: Notifier | None = None, pin_factory: Any = None) -> None:
    """Show ``message`` to systemd (``STATUS=``) and the fault blink for ``hold_s`` seconds.

    Does nothing on the LED when ``gpio`` is None or not enabled (returns at once).
    ``pin_factory`` overrides ``gpio.pin_factory`` (tests).
    """
    if notifier is not None:
        notifier.status(message)
    if gpio is None or not gpio.enabled:
        return
    log.error("%s (fault blink for %.0f s before exit)", message, hold_s)
    async with StatusPanel(gpio, factory=pin_factory) as panel:
        panel.set_state("fault")
        await asyncio.sleep(hold_s)


def load_config_or_fault(path: Path | str, *, hold_s: float = FAULT_HOLD_S) -> Config:
    """:func:`edge.config.load_config`, showing the fault blink on a ConfigError.

    Raises:
        ConfigError: the config is invalid (after ``hold_s`` s of fault blink when its
            ``[gpio]`` section is usable and enabled; at once otherwise).
    """
    try:
        return load_config(path)
    except ConfigError as e:
        notifier = Notifier()
        gpio = gpio_section(path)
        if notifier.enabled or (gpio is not None and gpio.enabled):
            asyncio.run(show_fault(gpio, f"edge: {e}", hold_s=hold_s, notifier=notifier))
        notifier.close()
        raise


async def request_checkpoint(agent: Agent) -> int:
    """Ask for an on-demand checkpoint (the button's short press); returns the request id.

    Same path as ``edge sync-now`` (:func:`edge.checkpoint.stage.request_sync`), then
    wakes the checkpoint stage when it runs.
    """
    from edge.checkpoint.stage import request_sync

    rid = await request_sync(agent.outbox)
    if agent.checkpointer is not None:
        agent.checkpointer.wakeup.set()
    log.info("checkpoint requested (request %d)", rid)
    return rid


async def run_appliance(agent: Agent, *, stop_at: int | None = None, notifier: Notifier | None = None,
                        pin_factory: Any = None, metrics_power: Any = "auto",
                        fault_hold_s: float = FAULT_HOLD_S) -> None:
    """Run an entered :class:`edge.agent.Agent` as the appliance does.

    Args:
        agent: the agent, already entered (outbox open, model loaded).
        stop_at: passed to :meth:`Agent.run` (then everything stops when it returns).
        notifier: sd_notify sender (default: from ``$NOTIFY_SOCKET``; no-op if unset).
        pin_factory: gpiozero factory overriding ``gpio.pin_factory`` (tests).
        metrics_power: power source for the metrics (``"auto"``, None, a PowerSource).
        fault_hold_s: seconds of fault blink before an EdgeError of the agent goes up
            (only when the panel is enabled).

    The button's short press requests a checkpoint and acknowledges a lit alert; a long
    press cancels this task (a clean stop, exit status 0, like SIGTERM).

    Raises: whatever :meth:`Agent.run` raises (the first error, unwrapped), ConfigError
        when the metrics port cannot be bound, CancelledError on a stop.
    """
    cfg = agent.cfg
    note = notifier if notifier is not None else Notifier()
    main = asyncio.current_task()
    panel: StatusPanel | None = None

    def on_checkpoint() -> Any:
        if panel is not None:
            panel.clear_alert()
        return request_checkpoint(agent)

    def on_shutdown() -> None:
        log.info("clean shutdown requested from the button")
        if main is not None:
            main.cancel()

    async with StatusPanel(cfg.gpio, on_checkpoint=on_checkpoint, on_shutdown=on_shutdown,
                           factory=pin_factory) as panel, \
            Metrics.from_config(cfg.metrics, power=metrics_power) as metrics:
        note.ready(status=f"edge {__version__}: following {cfg.node.ws_url}")
        try:
            async with asyncio.TaskGroup() as tg:
                side = [
                    tg.create_task(note.watchdog_loop(), name="watchdog"),
                    tg.create_task(follow(agent, panel), name="panel"),
                    tg.create_task(metrics.follow(agent), name="metrics"),
                    tg.create_task(_status_loop(agent, note), name="status"),
                ]
                await agent.run(stop_at=stop_at)
                for t in side:
                    t.cancel()
        except BaseExceptionGroup as eg:
            err = first_error(eg)
            if isinstance(err, EdgeError):
                note.status(f"edge: {err}")
            if isinstance(err, EdgeError) and panel.enabled:
                panel.set_state("fault")
                await asyncio.sleep(fault_hold_s)
            raise err from eg
        finally:
            note.stopping()
            note.close()


async def _status_loop(agent: Agent, note: Notifier) -> None:
    if not note.enabled:
        return
    while True:
        await asyncio.sleep(agent.cfg.log.stats_interval_s)
        note.status(agent.stats_line())

