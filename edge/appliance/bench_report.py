"""``edge bench --report DIR``: the benchmark as a page to look at, plus its raw JSON.

:func:`collect` runs ``edge bench`` (:func:`edge.appliance.bench.run_bench`) once per worker count
``1..N`` on the same corpus, sampling the resident set size (RSS) of the benchmark's
processes every ``rss_interval_s`` seconds while each run goes (:class:`RssSampler`: this
process and its descendants, from ``/proc``), and keeps each run's per-batch latencies.
:func:`write_report` writes into ``DIR``:

- ``bench.json``: everything measured (each run's summary as in ``edge bench --json``,
  its per-batch amortised latencies with their batch sizes, its RSS time series);
- ``index.html``: one self-contained page (no script, no external resource) with a
  summary table and inline SVG plots: throughput vs workers (with linear scaling from
  one worker for reference), the latency CDF per worker count, RSS over time, and
  contracts/s per watt vs workers *only when a power figure exists* (otherwise the page
  says that power is unknown; nothing is invented).

The plots are drawn with matplotlib (object API, no pyplot state, SVG with glyphs as
paths), an optional dependency: ``pip install 'edge-gateway[report]'``; the device's
install stays without it. :func:`render_html` re-renders a page from a ``bench.json``.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.appliance.bench import BenchResult, WorkerResult

__all__ = ["RssSampler", "collect", "render_html", "report_command", "tree_rss_bytes", "write_report"]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes(pid: int) -> int:
    """Resident set size of one process (``/proc/PID/statm``, field 2), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc/PID/task/*/children``), [] where unreadable."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                out.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def tree_rss_bytes(root: int) -> int:
    """RSS of ``root`` plus all its descendants, in bytes (Linux ``/proc``; 0 elsewhere)."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_bytes(pid)
        todo.extend(_children(pid))
    return total


class RssSampler:
    """Samples the RSS of this process and its descendants in a background thread.

    A context manager: ``with RssSampler(0.05) as s: work()``, then :attr:`samples` holds
    ``(seconds since enter, MB)`` pairs (MB = 2**20 bytes), one at enter, one every
    ``interval_s`` seconds and one at exit. Where ``/proc`` is absent every value is 0.
    """

    def __init__(self, interval_s: float = 0.05, *, pid: int | None = None) -> None:
        if not interval_s > 0:
            raise EdgeError(f"bench report: RSS sampling interval must be > 0 s, got {interval_s}")
        self.interval_s = interval_s
        self.pid = pid if pid is not None else os.getpid()
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def _sample(self) -> None:
        self.samples.append((time.perf_counter() - self._t0, tree_rss_bytes(self.pid) / 2**20))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._t0 = time.perf_counter()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()


RunBench = Callable[..., "BenchResult"]


def collect(
    corpus: Path,
    *,
    max_workers: int,
    run_bench: RunBench,
    rss_interval_s: float = 0.05,
    on_run: Callable[[BenchResult], None] | None = None,
    **bench_kw: Any,
) -> dict[str, Any]:
    """Run the benchmark for 1..``max_workers`` workers; the JSON-ready report data.

    Args:
        corpus: the corpus given to every run. max_workers: >= 1.
        run_bench: :func:`edge.appliance.bench.run_bench` (injected; it must accept ``keep=``).
        rss_interval_s: seconds between RSS samples.
        on_run: called with each run's summary as it finishes (to print it).
        bench_kw: passed to every run (``watts``, ``batch``, ``limit``, ``model``, ...).

    Returns: ``{"generated", "host", "corpus", "runs": [{"workers", "result",
    "latency_us", "batch_sizes", "rss": [[s, MB], ...]}, ...]}``.

    Raises: EdgeError from the benchmark (bad arguments, corpus, model, a failed worker).
    """
    if max_workers < 1:
        raise EdgeError(f"bench: --workers must be >= 1, got {max_workers}")
    runs: list[dict[str, Any]] = []
    for w in range(1, max_workers + 1):
        kept: list[WorkerResult] = []
        with RssSampler(rss_interval_s) as rss:
            res = run_bench(corpus, workers=w, keep=kept, **bench_kw)
        if on_run is not None:
            on_run(res)
        runs.append({
            "workers": w,
            "result": res.as_json(),
            "latency_us": [round(x, 3) for r in kept for x in r.latency_us],
            "batch_sizes": [n for r in kept for n in r.batch_sizes],
            "rss": [[round(t, 3), round(mb, 2)] for t, mb in rss.samples],
        })
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"machine": platform.machine(), "python": platform.python_version(),
                 "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()},
        "corpus": corpus.name,
        "runs": runs,
    }


# -- plots --------------------------------------------------------------------------

def _figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise EdgeError("bench --report draws its plots with matplotlib, which is not installed: "
                        "pip install 'edge-gateway[report]' (an optional extra; the device does not need it)") from e
    fig = Figure(figsize=(7.0, 3.6), dpi=96, layout="constrained")
    return fig


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "edge-bench"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)  # RDF boilerplate


def _plot_throughput(runs: Sequence[Mapping[str, Any]]) -> str:
    fig = _figure()
    ax = fig.add_subplot()
    ws = [r["workers"] for r in runs]
    cps = [r["result"]["contracts_per_s"] for r in runs]
    ax.plot(ws, cps, marker="o", label="measured")
    if cps and cps[0]:
        ax.plot(ws, [cps[0] * w for w in ws], linestyle="--", color="grey", label="linear from 1 worker")
    ax.set_xlabel("workers (processes)")
    ax.set_ylabel("contracts/s")
    ax.set_xticks(ws)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Throughput vs workers")
    return _svg(fig)


def _weighted_cdf(values: Sequence[float], weights: Sequence[int]) -> tuple[list[float], list[float]]:
    pairs = sorted(zip(values, weights))
    total = float(sum(w for _, w in pairs)) or 1.0
    xs, ys, acc = [], [], 0.0
    for v, w in pairs:
        acc += w
        xs.append(v)
        ys.append(acc / total)
    return xs, ys


def _plot_latency(runs: Sequence[Mapping[str, Any]]) -> str:
    fig = _figure()
    ax = fig.add_subplot()
    for r in runs:
        xs, ys = _weighted_cdf(r["latency_us"], r["batch_sizes"])
        if xs:
            ax.step(xs, ys, where="post", label=f"{r['workers']} worker(s)")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    ax.set_xlabel("µs per contract (amortised over its batch)")
    ax.set_ylabel("fraction of contracts")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("Latency CDF")
    return _svg(fig)


def _plot_rss(runs: Sequence[Mapping[str, Any]]) -> str:
    fig = _figure()
    ax = fig.add_subplot()
    for r in runs:
        pts = r["rss"]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"{r['workers']} worker(s)")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("RSS, MB (all bench processes)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Memory over time")
    return _svg(fig)


def _plot_efficiency(runs: Sequence[Mapping[str, Any]]) -> str:
    fig = _figure()
    ax = fig.add_subplot()
    pts = [(r["workers"], r["result"]["contracts_per_s_per_w"], r["result"]["watts_source"]) for r in runs
           if r["result"].get("contracts_per_s_per_w") is not None]
    ax.bar([p[0] for p in pts], [p[1] for p in pts], width=0.5)
    ax.set_xlabel("workers (processes)")
    ax.set_ylabel("contracts/s per W")
    ax.set_xticks([p[0] for p in pts])
    ax.grid(alpha=0.3, axis="y")
    ax.set_title("Efficiency (power: " + ", ".join(sorted({str(p[2]) for p in pts})) + ")")
    return _svg(fig)


# -- the page -----------------------------------------------------------------------

def _fmt(v: Any, spec: str = ",.1f") -> str:
    if v is None:
        return "unknown"
    if isinstance(v, float) and v != v:  # NaN
        return "n/a"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def render_html(data: Mapping[str, Any]) -> str:
    """The report page for :func:`collect`'s data (or a loaded ``bench.json``).

    Raises: EdgeError when matplotlib is missing or the data has no runs.
    """
    runs = list(data.get("runs") or [])
    if not runs:
        raise EdgeError("bench report: no runs to show")
    e = html.escape
    figures = [
        ("throughput", "Contracts per second against worker processes (each with its own outbox file, "
                       "pinned to one CPU); the dashed line is linear scaling from one worker.", _plot_throughput(runs)),
        ("latency", "Cumulative distribution of the per-contract latency: (featurize + score + explain + "
                    "buffer time of its batch) / batch size, weighted by contracts.", _plot_latency(runs)),
        ("rss", "Resident set size of the benchmark's processes (this one and its workers), sampled from "
                "/proc while each run goes.", _plot_rss(runs)),
    ]
    have_power = any(r["result"].get("contracts_per_s_per_w") is not None for r in runs)
    if have_power:
        figures.append(("efficiency", "Contracts per second per watt (whole board or package power while "
                                      "the run goes; see edge.appliance.power).", _plot_efficiency(runs)))
    rows = []
    for r in runs:
        res = r["result"]
        rows.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in (
            str(r["workers"]), _fmt(res["contracts"], ","), _fmt(res["contracts_per_s"], ",.0f"),
            _fmt(res["latency_us_p50"]), _fmt(res["latency_us_p99"]), _fmt(res["rss_peak_mb"]),
            _fmt(res.get("watts"), ".2f") + (f" ({res['watts_source']})" if res.get("watts") is not None else ""),
            _fmt(res.get("contracts_per_s_per_w"), ",.0f"),
        )) + "</tr>")
    first = runs[0]["result"]
    host = data.get("host", {})
    power_note = "" if have_power else (
        '<p class="note" id="power-unknown">Power: unknown (no Raspberry Pi 5 PMIC, no readable RAPL powercap); '
        "give <code>--watts W</code> from a meter to get contracts/s per watt.</p>")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>edge bench report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}figure{margin:1.5em 0}"
        "figcaption{color:#444;font-size:.9em}.note{color:#844}</style>",
        "</head><body>",
        "<h1>edge bench</h1>",
        f"<p>Corpus <code>{e(str(data.get('corpus', '')))}</code>, batch {e(str(first.get('batch')))}, "
        f"featurizer {e(str(first.get('featurizer')))}, model {e(str(first.get('model_id', ''))[:12])}…, "
        f"buffered: {e(str(first.get('buffered')))}; host {e(str(host.get('machine')))}, "
        f"{e(str(host.get('cpus')))} CPU(s), Python {e(str(host.get('python')))}; "
        f"generated {e(str(data.get('generated', '')))}. Raw figures: <a href=\"bench.json\">bench.json</a>.</p>",
        "<table><thead><tr><th>workers</th><th>contracts</th><th>contracts/s</th><th>p50 µs</th>"
        "<th>p99 µs</th><th>peak RSS MB</th><th>watts</th><th>contracts/s/W</th></tr></thead><tbody>",
        *rows,
        "</tbody></table>",
        power_note,
    ]
    for fid, caption, svg in figures:
        parts.append(f'<figure id="{fid}">{svg}<figcaption>{e(caption)}</figcaption></figure>')
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(folder: Path, data: Mapping[str, Any]) -> Path:
    """Write ``bench.json`` and ``index.html`` into ``folder`` (created); the page's path.

    Raises: EdgeError when the folder cannot be written, matplotlib is missing, or no runs.
    """
    page = render_html(data)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bench.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        out = folder / "index.html"
        out.write_text(page, encoding="utf-8")
    except OSError as e:
        raise EdgeError(f"bench --report: cannot write into {folder}: {e.strerror or e}") from e
    return out


def report_command(args: argparse.Namespace, run_bench: RunBench, text: Callable[[BenchResult], str]) -> int:
    """``edge bench --report DIR``: runs 1..``--workers`` workers, writes the report.

    Prints each run's text summary (``text``), then the page's path; with ``--json`` a
    last line ``{"report": PATH, "runs": [summary, ...]}``. Returns the exit status 0.

    Raises: EdgeError (see :func:`collect`, :func:`write_report`).
    """
    _figure()  # fail before the runs, not after them, when matplotlib is missing
    corpus = Path(args.corpus)
    data = collect(
        corpus, max_workers=args.workers, run_bench=run_bench,
        watts=args.watts, batch=args.batch, limit=args.limit,
        model=Path(args.model) if args.model else None,
        pin=not args.no_pin, progress=not args.no_progress, with_code=args.with_code,
        on_run=lambda res: print(text(res), flush=True),
    )
    page = write_report(Path(args.report), data)
    print(f"report: {page}")
    if args.json:
        print(json.dumps({"report": str(page), "runs": [r["result"] for r in data["runs"]]}, sort_keys=True))
    return 0
