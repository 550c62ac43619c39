"""Reading a child agent's Prometheus endpoint (benchmarks and soak runs measure
``edge run`` as an operator's monitoring would). Never raises: an endpoint that is not up
yet reads as no metrics."""

from __future__ import annotations

import urllib.request

__all__ = ["scrape_metrics"]


def scrape_metrics(port: int, timeout: float = 2.0) -> dict[str, float]:
    """The samples of ``http://127.0.0.1:PORT/metrics`` (Prometheus text format 0.0.4),
    summed per metric name over their labels: ``{name: value}``; ``{}`` when the endpoint
    cannot be read within ``timeout`` s. Lines that are comments or carry no number are
    skipped."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
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
