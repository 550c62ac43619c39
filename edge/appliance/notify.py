"""systemd readiness and watchdog notifications (the sd_notify(3) protocol), own code.

The protocol is one datagram per message on the AF_UNIX socket named by
``$NOTIFY_SOCKET``: newline-separated ``KEY=VALUE`` assignments (``READY=1``,
``STATUS=...``, ``STOPPING=1``, ``WATCHDOG=1``). A name starting with ``@`` is a Linux
abstract socket (the ``@`` stands for a leading NUL byte). With ``Type=notify`` and
``WatchdogSec=``, systemd sets ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, the process the
watchdog is meant for; see sd_watchdog_enabled(3)) and restarts the service when no
``WATCHDOG=1`` arrives within that time. sd_watchdog_enabled(3) advises pinging at half
the interval.

:meth:`Notifier.watchdog_loop` pings from the asyncio event loop itself (not a thread):
a ping then proves that the loop runs, so a coroutine that blocks the loop stops the
pings and systemd restarts the agent.

Everything is a no-op when ``$NOTIFY_SOCKET`` is unset (not started by systemd). A send
that fails (socket gone, queue full) is logged once and never raises: notifications are
advisory, the agent's work must not depend on them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

from edge.clock import SYSTEM_CLOCK, Clock

__all__ = ["Notifier"]

log = logging.getLogger("edge.notify")


class Notifier:
    """Sends sd_notify(3) messages to systemd.

    Args:
        environ: where ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` are read
            (default ``os.environ``, read once, at construction).

    Attributes:
        address: the socket address (str path, or bytes starting with NUL for an abstract
            socket), or None when notifications are off.
        watchdog_s: the watchdog timeout in seconds (``WATCHDOG_USEC`` / 1e6), or None when
            the watchdog is off or meant for another process (``WATCHDOG_PID``).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if name.startswith("@"):
            self.address = b"\0" + name[1:].encode()
        elif name.startswith("/"):
            self.address = name
        self.watchdog_s = _watchdog_seconds(env)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when ``$NOTIFY_SOCKET`` names a socket."""
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines; True if it was sent.

        No-op (False) without ``$NOTIFY_SOCKET``. Never raises: an OSError is logged once.
        """
        if self.address is None:
            return False
        msg = "\n".join(a.replace("\n", " ") for a in assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # never stall the event loop on a full queue
            self._sock.sendto(msg, self.address)
        except OSError as e:
            if not self._warned:
                log.warning("sd_notify to %r failed: %s (further failures are not logged)", self.address, e)
                self._warned = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """``READY=1`` (and ``STATUS=`` when given): start-up is complete."""
        return self.notify("READY=1", *((f"STATUS={status}",) if status else ()))

    def status(self, text: str) -> bool:
        """``STATUS=text``: one line shown by ``systemctl status``."""
        return self.notify(f"STATUS={text}")

    def stopping(self, status: str = "") -> bool:
        """``STOPPING=1``: a clean shutdown has begun."""
        return self.notify("STOPPING=1", *((f"STATUS={status}",) if status else ()))

    def watchdog(self) -> bool:
        """One ``WATCHDOG=1`` keep-alive ping."""
        return self.notify("WATCHDOG=1")

    async def watchdog_loop(self, clock: Clock = SYSTEM_CLOCK) -> None:
        """Ping ``WATCHDOG=1`` every ``watchdog_s / 2`` seconds (of ``clock``) from the
        running event loop.

        Returns at once when notifications or the watchdog are off; otherwise runs until
        cancelled. A blocked event loop stops the pings (that is the point).
        """
        if self.address is None or self.watchdog_s is None:
            return
        every = self.watchdog_s / 2
        while True:
            self.watchdog()
            await clock.sleep(every)

    def close(self) -> None:
        """Close the socket (a later message reopens it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1e6
