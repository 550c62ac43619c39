"""Reading a child agent's Prometheus endpoint (benchmarks and soak runs measure
``edge run`` as an operator's monitoring would). Never raises: an endpoint that is not up
yet reads as no metrics."""

from __future__ import annotations

import math
import re
import urllib.request

__all__ = ["scrape_histogram", "scrape_metrics"]

_LE = re.compile(r'[{,]le="([^"]+)"')


def _read(port: int, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            text: str = r.read().decode()
            return text
    except OSError:
        return None


def scrape_metrics(port: int, timeout: float = 2.0) -> dict[str, float]:
    """The samples of ``http://127.0.0.1:PORT/metrics`` (Prometheus text format 0.0.4),
    summed per metric name over their labels: ``{name: value}``; ``{}`` when the endpoint
    cannot be read within ``timeout`` s. Lines that are comments or carry no number are
    skipped."""
    text = _read(port, timeout)
    if text is None:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            key = name.split("{", 1)[0]
            try:
                out[key] = out.get(key, 0.0) + float(value)
            except ValueError:
                pass
    return out


def scrape_histogram(port: int, name: str, timeout: float = 2.0) -> list[tuple[float, float]]:
    """The cumulative buckets of histogram ``name`` at ``http://127.0.0.1:PORT/metrics``:
    ``[(le in its unit, samples <= le), ...]`` sorted by ``le`` (``+Inf`` as ``math.inf``),
    summed over any other labels; ``[]`` when the endpoint cannot be read or has no such
    histogram. For :func:`edge.scoring.latency.quantile_from_buckets`."""
    text = _read(port, timeout)
    if text is None:
        return []
    acc: dict[float, float] = {}
    prefix = name + "_bucket{"
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        labels, _, value = line.rpartition(" ")
        m = _LE.search(labels)
        if m is None:
            continue
        le = math.inf if m.group(1) == "+Inf" else float(m.group(1))
        try:
            acc[le] = acc.get(le, 0.0) + float(value)
        except ValueError:
            pass
    return sorted(acc.items())
