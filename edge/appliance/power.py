"""Power readings for ``edge bench``: watts where the hardware tells, else unknown.

Sources, in the order :func:`detect_source` tries them:

* ``meter``: a fixed figure from an external meter (``edge bench --watts W``).
* ``pi5-pmic``: Raspberry Pi 5 PMIC (Renesas DA9091) via ``vcgencmd pmic_read_adc``,
  which prints per-rail ``<RAIL>_A current(n)=<amps>A`` and ``<RAIL>_V volt(n)=<volts>V``
  lines. The sum of V x I over the rails undercounts the wall (conversion losses, the
  USB/5 V side); the published correction ``total = 1.1451 * sum + 0.5879`` W is applied.
  Each call spawns a process, so it is sampled at most once per second, in a thread.
  Needs the ``video`` group.
* ``rapl``: Intel RAPL (also AMD Zen through intel_rapl_msr) through the Linux powercap
  sysfs: ``/sys/class/powercap/intel-rapl:N/energy_uj`` of each *package* domain, read
  at the start and end (and at <= 1 Hz between, so a counter wrap at
  ``max_energy_range_uj`` is never missed); watts = energy / time. Root only since
  Linux 5.10.
* ``unknown``: nothing readable. Watts are then ``None``; nothing is ever invented.

All figures are whole-board (PMIC) or whole-package (RAPL) power while the benchmark
runs, not the benchmark's own share.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol

__all__ = [
    "PI5_CORRECTION",
    "PowerMeter",
    "PowerResult",
    "PowerSource",
    "FixedWatts",
    "Pi5Pmic",
    "Rapl",
    "detect_source",
    "parse_pmic_adc",
    "pi5_wall_watts",
    "rapl_delta_uj",
]

PI5_CORRECTION: Final = (1.1451, 0.5879)
"""(gain, offset W): wall watts of a Raspberry Pi 5 ~= gain * sum(V x I) + offset."""

_PMIC_LINE = re.compile(
    r"^\s*(?P<rail>\S+?)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)\s*=\s*"
    r"(?P<value>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)(?P<unit>[AV])\s*$"
)


def parse_pmic_adc(text: str) -> float | None:
    """Sum of V x I (W) over the rails of ``vcgencmd pmic_read_adc`` output.

    A rail counts when both its ``_A`` current and ``_V`` voltage lines are present
    (``EXT5V_V`` and ``BATT_V`` have no current and are ignored). Malformed lines are
    skipped.

    Returns:
        The raw sum in watts, or None when no rail has both readings (e.g. the
        ``error=... Command not registered`` answer of a board without the PMIC).
    """
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _PMIC_LINE.match(line)
        if m is None or m.group("kind") != m.group("unit"):
            continue
        (amps if m.group("kind") == "A" else volts)[m.group("rail")] = float(m.group("value"))
    rails = sorted(set(amps) & set(volts))
    if not rails:
        return None
    return sum(amps[r] * volts[r] for r in rails)


def pi5_wall_watts(rail_sum_w: float) -> float:
    """Wall power (W) of a Raspberry Pi 5 from the PMIC rail sum, with the correction."""
    gain, offset = PI5_CORRECTION
    return gain * rail_sum_w + offset


def rapl_delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """Energy (µJ) between two ``energy_uj`` readings, allowing one counter wrap.

    The counter runs from 0 to ``max_energy_range_uj`` and starts again at 0, so
    ``after < before`` means it wrapped once: ``max_range - before + after``.
    """
    if after >= before:
        return after - before
    return max_range_uj - before + after


class PowerSource(Protocol):
    """Something that yields watts over an interval."""

    name: str

    def start(self) -> None:
        """Begin a measurement (called once, before the workload)."""

    def sample(self) -> None:
        """Take an intermediate sample (called at <= 1 Hz from a thread)."""

    def finish(self) -> float | None:
        """End the measurement; average watts over it, or None if unknown."""


class FixedWatts:
    """A figure from an external meter (``--watts``): average = that figure."""

    name = "meter"

    def __init__(self, watts: float) -> None:
        self.watts = float(watts)

    def start(self) -> None:
        """Nothing to do."""

    def sample(self) -> None:
        """Nothing to do."""

    def finish(self) -> float | None:
        """The configured watts."""
        return self.watts


class Pi5Pmic:
    """Raspberry Pi 5 PMIC through ``vcgencmd pmic_read_adc`` (corrected wall watts).

    Args:
        vcgencmd: the command (path or name on PATH).
    """

    name = "pi5-pmic"

    def __init__(self, vcgencmd: str = "vcgencmd") -> None:
        self.vcgencmd = vcgencmd
        self._samples: list[float] = []

    def read(self) -> float | None:
        """One corrected reading in W, or None when the command fails or prints no rails."""
        try:
            out = subprocess.run(
                [self.vcgencmd, "pmic_read_adc"], capture_output=True, text=True, timeout=3, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0:
            return None
        raw = parse_pmic_adc(out.stdout)
        return None if raw is None else pi5_wall_watts(raw)

    def start(self) -> None:
        """Drop old samples and take the first."""
        self._samples = []
        self.sample()

    def sample(self) -> None:
        """Append one reading (if readable)."""
        w = self.read()
        if w is not None:
            self._samples.append(w)

    def finish(self) -> float | None:
        """Mean of the samples (the last one taken now), or None if none was readable."""
        self.sample()
        return sum(self._samples) / len(self._samples) if self._samples else None


class Rapl:
    """Package energy from the powercap sysfs (``intel-rapl:N`` domains).

    Args:
        root: the powercap folder (``/sys/class/powercap``; a temp dir in tests).
    """

    name = "rapl"

    def __init__(self, root: Path = Path("/sys/class/powercap")) -> None:
        self.root = root
        self.domains = self._package_domains()
        self._last: dict[Path, int] = {}
        self._energy_uj = 0
        self._t0 = 0.0
        self._ok = True

    def _package_domains(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(self.root.glob("intel-rapl:*")):
            if d.name.count(":") != 1:  # sub-zones (intel-rapl:0:0 = core, ...) are inside the package
                continue
            if (d / "energy_uj").exists() and (d / "max_energy_range_uj").exists():
                out.append(d)
        return out

    def readable(self) -> bool:
        """True when every package domain's counter can be read now."""
        return bool(self.domains) and all(self._read(d) is not None for d in self.domains)

    @staticmethod
    def _read(d: Path) -> int | None:
        try:
            return int((d / "energy_uj").read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self) -> None:
        """Read every counter and the clock."""
        self._energy_uj = 0
        self._ok = True
        self._last = {}
        for d in self.domains:
            v = self._read(d)
            if v is None:
                self._ok = False
            else:
                self._last[d] = v
        self._t0 = time.monotonic()

    def sample(self) -> None:
        """Accumulate the energy since the last reading (wrap-safe)."""
        for d in self.domains:
            v = self._read(d)
            if v is None or d not in self._last:
                self._ok = False
                continue
            try:
                max_range = int((d / "max_energy_range_uj").read_text().strip())
            except (OSError, ValueError):
                self._ok = False
                continue
            self._energy_uj += rapl_delta_uj(self._last[d], v, max_range)
            self._last[d] = v

    def finish(self) -> float | None:
        """Average package watts since :meth:`start`, or None if a counter was unreadable."""
        self.sample()
        dt = time.monotonic() - self._t0
        if not self._ok or not self.domains or dt <= 0:
            return None
        return self._energy_uj / 1e6 / dt


def detect_source(
    watts: float | None = None,
    *,
    vcgencmd: str = "vcgencmd",
    powercap: Path = Path("/sys/class/powercap"),
) -> PowerSource | None:
    """The best available power source, or None (unknown).

    Args:
        watts: a meter figure (``--watts``); wins when given.
        vcgencmd: command used for the Pi 5 PMIC.
        powercap: powercap sysfs root for RAPL.
    """
    if watts is not None:
        return FixedWatts(watts)
    if shutil.which(vcgencmd) is not None:
        pmic = Pi5Pmic(vcgencmd)
        if pmic.read() is not None:
            return pmic
    rapl = Rapl(powercap)
    if rapl.readable():
        return rapl
    return None


@dataclass(frozen=True, slots=True)
class PowerResult:
    """Average watts over a measured interval and where they came from.

    Attributes:
        watts: average W, or None when unknown.
        source: ``meter`` | ``pi5-pmic`` | ``rapl`` | ``unknown``.
    """

    watts: float | None
    source: str


class PowerMeter:
    """Measures average power over a ``with`` block, sampling in a background thread.

    Args:
        source: from :func:`detect_source` (None: unknown, no thread is started).
        interval_s: seconds between samples (clamped to >= 1.0: ``vcgencmd`` spawns a
            process per call).

    Usage::

        with PowerMeter(detect_source(args.watts)) as pm:
            run_workload()
        print(pm.result.watts, pm.result.source)
    """

    def __init__(self, source: PowerSource | None, *, interval_s: float = 1.0) -> None:
        self.source = source
        self.interval_s = max(1.0, interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.result = PowerResult(None, "unknown")

    def __enter__(self) -> PowerMeter:
        if self.source is not None:
            self.source.start()
            self._thread = threading.Thread(target=self._loop, name="power-sampler", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        assert self.source is not None
        while not self._stop.wait(self.interval_s):
            self.source.sample()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.source is not None:
            w = self.source.finish()
            self.result = PowerResult(w, self.source.name if w is not None else "unknown")
