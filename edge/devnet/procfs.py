"""Reading other processes from Linux ``/proc`` (benchmarks and soak runs measure the
agent as a child process). Linux only; every reader returns 0 / [] for a process that
is gone or a file that cannot be read, never raises."""

from __future__ import annotations

from pathlib import Path

__all__ = ["status_kb", "children"]


def status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM`` ...) in KiB; 0 if absent."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s direct children (``/proc/PID/task/*/children``); [] if gone."""
    out: list[int] = []
    try:
        for t in Path(f"/proc/{pid}/task").iterdir():
            out += [int(x) for x in (t / "children").read_text().split()]
    except OSError:
        pass
    return out
