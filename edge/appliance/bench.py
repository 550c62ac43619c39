"""``edge bench``: replay a bytecode corpus through featurize + score + buffer.

Each worker streams its share of the corpus (round-robin blocks of ``--batch`` rows),
and for every batch: featurizes (C extension), scores (onnxruntime, one thread), ranks
the top features, and buffers the score rows in the real SQLite outbox
(:class:`edge.store.db.Outbox`: aiosqlite, WAL, ``synchronous=NORMAL``, one transaction
per batch), exactly what the scoring stage writes on a device. ``--with-code`` also
buffers each code blob (``codes`` table), which on a device the ingest stage writes. ``--workers N`` runs N processes (``spawn``); each has **its own outbox
file** (``worker-K.sqlite`` in the bench folder), so no worker waits for another's write
lock; each is pinned to one CPU (Linux) so ``--workers 1`` measures one core.

Timing starts once every worker has loaded its model and opened its outbox, and stops
when the last one has committed its last batch; reading the corpus (gunzip, JSON, hex)
is inside the measured time and reported as its own stage. Latency per contract is the
*batch-amortised* figure: (featurize + score + explain + buffer time of its batch) /
batch size; p50/p99 are over contracts. Peak RSS is each process's ``ru_maxrss``.
Power: see :mod:`edge.appliance.power` (unknown when nothing is readable; never invented).

The capability analysis is NOT in that loop (on a device it runs in its own worker
process, off the hot path). It is measured after it, as on a device: the first
``analysis_codes`` distinct codes of the corpus (by keccak-256, as the agent analyses
once per code hash) go one at a time through the agent's
:class:`edge.scoring.capability_worker.CapabilityWorker` (a spawned child, budget per
code); reported: distinct codes/s (wall, IPC included), p50/p99/max ms per code (the
analyzer's own time), round-trip p99, and timeouts at the budget.

Nothing here imports web3.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError
from edge.appliance.power import PowerMeter, detect_source

__all__ = ["BenchResult", "WorkerResult", "run_analysis_bench", "run_bench"]

_STAGES = ("read", "featurize", "score", "explain", "buffer")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker replays (picklable)."""

    worker: int
    workers: int
    corpus: str
    outbox: str
    model: str
    batch: int
    limit: int | None
    cpu: int | None
    with_code: bool = False


@dataclass(slots=True)
class WorkerResult:
    """One worker's measurements.

    Attributes:
        contracts: rows scored and buffered. bad_rows: rows skipped (bad hex / JSON).
        flagged: rows at or above the threshold. seconds: the worker's busy wall time.
        stage_ns: total nanoseconds per stage. latency_us: per-batch amortised µs per
        contract, one value per batch, with ``batch_sizes``. rss_peak_mb: ru_maxrss.
    """

    worker: int
    contracts: int = 0
    bad_rows: int = 0
    flagged: int = 0
    seconds: float = 0.0
    stage_ns: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_STAGES, 0))
    latency_us: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    rss_peak_mb: float = 0.0
    model_id: str = ""
    backend: str = ""
    cpu: int | None = None


@dataclass(frozen=True, slots=True)
class BenchResult:
    """The benchmark's summary (the ``--json`` object is :meth:`as_json`)."""

    contracts: int
    seconds: float
    workers: int
    contracts_per_s: float
    contracts_per_s_per_worker: list[float]
    pipeline_contracts_per_s: float
    stage_us: dict[str, float]
    latency_us_p50: float
    latency_us_p99: float
    latency_basis: str
    batch_ms_p50: float
    batch_ms_p99: float
    rss_peak_mb: float
    rss_peak_mb_per_worker: list[float]
    watts: float | None
    watts_source: str
    contracts_per_s_per_w: float | None
    flagged: int
    bad_rows: int
    batch: int
    model_id: str
    featurizer: str
    pinned_cpus: list[int | None]
    corpus: str
    buffered: str
    analysis: dict[str, Any] | None = None
    """Capability analysis figures (module doc), or None when not measured."""

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (floats rounded)."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 3)
            elif isinstance(v, dict) and all(isinstance(x, float) for x in v.values()):
                out[k] = {kk: round(vv, 3) for kk, vv in v.items()}
            elif isinstance(v, list) and v and isinstance(v[0], float):
                out[k] = [round(x, 3) for x in v]
        return out


def _pin(cpu: int | None) -> int | None:
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        allowed = sorted(os.sched_getaffinity(0))
        target = allowed[cpu % len(allowed)]
        os.sched_setaffinity(0, {target})
        return target
    except OSError:
        return None


async def _replay(spec: WorkerSpec, ready: Callable[[], None], progress: Callable[[int], None]) -> WorkerResult:
    from edge.scoring.batch import score_codes
    from edge.scoring.corpus_reader import iter_codes
    from edge.scoring.features import BACKEND
    from edge.scoring.model import RiskModel
    from edge.store.db import Outbox
    from edge.store.scores import put_codes_and_scores, put_scores

    res = WorkerResult(spec.worker, backend=BACKEND)
    model = RiskModel(spec.model)
    res.model_id = model.model_id
    keccak: Callable[[bytes], bytes] | None = None
    async with Outbox(spec.outbox) as ob:
        await asyncio.to_thread(ready)
        t_start = time.perf_counter()
        rows = iter_codes(spec.corpus, limit=spec.limit, shard=spec.worker, shards=spec.workers, block=spec.batch)
        ns = res.stage_ns
        clock = time.perf_counter_ns
        while True:
            t0 = clock()
            batch = list(islice(rows, spec.batch))
            if not batch:
                break
            good = [r for r in batch if r.code is not None]
            res.bad_rows += len(batch) - len(good)
            codes: list[bytes] = [r.code for r in good if r.code is not None]
            hashes: list[bytes] = []
            for r in good:
                if r.keccak is not None:
                    hashes.append(r.keccak)
                else:
                    if keccak is None:
                        from eth_hash.auto import keccak as _k

                        keccak = _k
                    hashes.append(keccak(r.code or b""))
            t1 = clock()
            scored = score_codes(model, codes)
            score_rows = scored.rows(hashes, time.time())
            t4 = clock()
            t2 = t1 + scored.featurize_ns
            t3 = t2 + scored.score_ns  # explain: the rest, building the rows included
            if spec.with_code:
                await put_codes_and_scores(ob, list(zip(hashes, codes)), score_rows)
            else:
                await put_scores(ob, score_rows)
            t5 = clock()
            for name, dt in zip(_STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                ns[name] += dt
            n = len(codes)
            if n:
                res.latency_us.append((t5 - t1) / n / 1e3)
                res.batch_ms.append((t5 - t1) / 1e6)
                res.batch_sizes.append(n)
            res.contracts += n
            res.flagged += scored.flagged
            progress(len(batch))
        res.seconds = time.perf_counter() - t_start
    res.rss_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return res


def _run_loop(spec: WorkerSpec, ready: Callable[[], None], progress: Callable[[int], None]) -> WorkerResult:
    try:
        import uvloop

        return uvloop.run(_replay(spec, ready, progress))
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(_replay(spec, ready, progress))


def _worker_main(spec: WorkerSpec, barrier: Any, counter: Any, results: Any) -> None:
    """Entry point of a worker process: pin, replay, send the result (or the error)."""
    cpu = _pin(spec.cpu)

    def progress(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    try:
        res = _run_loop(spec, barrier.wait, progress)
        res.cpu = cpu
        results.put(("ok", asdict(res)))
    except BaseException as e:  # report to the parent, which raises an EdgeError
        try:
            barrier.abort()
        except Exception:  # noqa: BLE001 - best effort, the parent sees the error below
            pass
        results.put(("error", f"worker {spec.worker}: {type(e).__name__}: {e}"))


class _Progress:
    """A progress bar on stderr (no dependency), redrawn at most 10 times a second."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.done = 0
        self._t0 = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        now = time.perf_counter()
        if not self.enabled or (not force and now - self._last < 0.1):
            return
        self._last = now
        frac = min(1.0, done / self.total)
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = done / max(now - self._t0, 1e-9)
        sys.stderr.write(f"\r[{bar}] {done:,}/{self.total:,} {frac * 100:5.1f}% {rate:,.0f}/s ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self.update(self.done, force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()


def _percentile(values: list[float], weights: list[int], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.repeat(np.asarray(values), np.asarray(weights)), q))


def run_bench(
    corpus: Path,
    *,
    workers: int = 1,
    watts: float | None = None,
    batch: int = 256,
    limit: int | None = None,
    model: Path | None = None,
    outbox_dir: Path | None = None,
    pin: bool = True,
    progress: bool = True,
    with_code: bool = False,
    keep: list[WorkerResult] | None = None,
    analysis_codes: int = 0,
    analysis_budget_s: float = 5.0,
) -> BenchResult:
    """Run the benchmark and return its summary.

    Args:
        corpus: jsonl(.gz) corpus with ``bytecode`` rows.
        workers: processes (>= 1); 1 runs in this process.
        watts: a meter figure; None = read the hardware (Pi 5 PMIC, RAPL) or unknown.
        batch: rows per batch (>= 1). limit: first rows only.
        model: ONNX model (default: the shipped one).
        outbox_dir: where the outbox files go (default: a temp folder, removed after).
        pin: pin each worker to one CPU. progress: draw the bar on stderr.
        with_code: buffer the code blobs too (what ingest writes on a device), not
            only the score rows the scoring stage writes.
        keep: when given, each worker's raw :class:`WorkerResult` is appended to it
            (per-batch latencies for ``--report``).
        analysis_codes: after the hot path, analyse this many distinct codes of the
            corpus in the capability worker (0: do not measure the analysis).
        analysis_budget_s: the analysis time budget per code (s).

    Raises:
        EdgeError: bad arguments, unreadable corpus, model or outbox problems, or a
            worker failed (its message is included).
    """
    from edge.scoring.corpus_reader import count_rows
    from edge.scoring.model import default_model_path

    if workers < 1:
        raise EdgeError(f"bench: --workers must be >= 1, got {workers}")
    if batch < 1:
        raise EdgeError(f"bench: --batch must be >= 1, got {batch}")
    if watts is not None and not watts > 0:
        raise EdgeError(f"bench: --watts must be > 0, got {watts}")
    if not corpus.is_file():
        raise EdgeError(f"bench: corpus not found: {corpus}")
    model_path = model or default_model_path()
    total = count_rows(corpus, limit=limit)
    own_dir = outbox_dir is None
    folder = Path(tempfile.mkdtemp(prefix="edge-bench-")) if own_dir else Path(outbox_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    specs = [
        WorkerSpec(w, workers, str(corpus), str(folder / f"worker-{w}.sqlite"), str(model_path), batch, limit,
                   w if pin else None, with_code)
        for w in range(workers)
    ]
    bar = _Progress(total, progress)
    source = detect_source(watts)
    results: list[WorkerResult] = []
    try:
        if workers == 1:
            old_affinity = os.sched_getaffinity(0) if pin and hasattr(os, "sched_getaffinity") else None
            cpu = _pin(specs[0].cpu)
            meter = PowerMeter(source)
            counter = [0]

            def one_progress(n: int) -> None:
                counter[0] += n
                bar.update(counter[0])

            try:
                with meter:
                    res = _run_loop(specs[0], lambda: None, one_progress)
            finally:
                if old_affinity is not None:
                    os.sched_setaffinity(0, old_affinity)
            res.cpu = cpu
            results = [res]
            wall = res.seconds  # model load and outbox open are outside the timed region
        else:
            results, wall, meter = _run_processes(specs, bar, source)
    finally:
        bar.close()
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)
    if keep is not None:
        keep.extend(results)
    summary = _summarise(results, wall, meter, corpus, batch, with_code)
    if analysis_codes > 0:
        summary = dataclasses.replace(summary, analysis=run_analysis_bench(corpus, analysis_codes,
                                                                           analysis_budget_s, limit=limit))
    return summary


def run_analysis_bench(corpus: Path, codes: int, budget_s: float, *, limit: int | None = None) -> dict[str, Any]:
    """Capability analysis figures over the first ``codes`` distinct codes (module doc).

    Returns a dict: ``codes``, ``codes_per_s`` (wall, one worker process), ``ms_p50``,
    ``ms_p99``, ``ms_max`` (the analyzer's time per code), ``roundtrip_ms_p99`` (submit
    to answer, IPC included), ``timeouts``, ``budget_s``, ``flags`` (codes per flag).

    Raises:
        EdgeError: bad ``codes`` / ``budget_s``, unreadable corpus.
    """
    from edge.scoring.capability_worker import CapabilityWorker
    from edge.scoring.corpus_reader import iter_codes

    if codes < 1 or not budget_s > 0:
        raise EdgeError(f"bench: --analysis-codes must be >= 1 and the budget > 0, got {codes}, {budget_s}")
    keccak: Callable[[bytes], bytes] | None = None
    picked: dict[bytes, bytes] = {}
    for r in iter_codes(corpus, limit=limit):
        if r.code is None:
            continue
        h = r.keccak
        if h is None:
            if keccak is None:
                from eth_hash.auto import keccak as _k

                keccak = _k
            h = keccak(r.code)
        picked.setdefault(h, r.code)
        if len(picked) >= codes:
            break

    async def go() -> tuple[float, list[float], list[float], list[Any]]:
        async with CapabilityWorker(budget_s=budget_s) as w:
            reports, trips = [], []
            first = next(iter(picked.items()), None)
            if first is not None:  # start the child (spawn + imports) outside the timed region
                await w.analyze(first[1], "0x" + first[0].hex())
            t0 = time.perf_counter()
            for h, code in picked.items():
                t = time.perf_counter()
                reports.append(await w.analyze(code, "0x" + h.hex()))
                trips.append((time.perf_counter() - t) * 1e3)
            wall = time.perf_counter() - t0
        return wall, [r.elapsed_s * 1e3 for r in reports], trips, reports

    wall, ms, trips, reports = asyncio.run(go())
    flags: dict[str, int] = {}
    for rep in reports:
        for f in rep.flag_names:
            flags[f] = flags.get(f, 0) + 1
    n = len(ms)
    return {
        "codes": n,
        "codes_per_s": round(n / wall, 2) if wall > 0 else float("nan"),
        "ms_p50": round(float(np.percentile(ms, 50)), 3) if ms else float("nan"),
        "ms_p99": round(float(np.percentile(ms, 99)), 3) if ms else float("nan"),
        "ms_max": round(max(ms), 3) if ms else float("nan"),
        "roundtrip_ms_p99": round(float(np.percentile(trips, 99)), 3) if trips else float("nan"),
        "timeouts": sum(1 for r in reports if r.status == "timeout"),
        "budget_s": budget_s,
        "flags": dict(sorted(flags.items())),
    }


def _run_processes(
    specs: list[WorkerSpec], bar: _Progress, source: Any
) -> tuple[list[WorkerResult], float, PowerMeter]:
    ctx = mp.get_context("spawn")
    n = len(specs)
    barrier = ctx.Barrier(n + 1)
    counters = [ctx.Value("q", 0) for _ in specs]
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(s, barrier, c, queue), name=f"edge-bench-{s.worker}")
             for s, c in zip(specs, counters)]
    for p in procs:
        p.start()
    meter = PowerMeter(source)
    raw: list[tuple[str, Any]] = []
    try:
        try:
            barrier.wait(timeout=120)
        except Exception:  # BrokenBarrierError: a worker failed before starting
            pass
        t0 = time.perf_counter()
        with meter:
            while len(raw) < n:
                try:
                    raw.append(queue.get(timeout=0.1))
                except Exception:  # queue.Empty
                    if not any(p.is_alive() for p in procs) and queue.empty():
                        break
                bar.update(sum(int(c.value) for c in counters))
        wall = time.perf_counter() - t0
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()
    errors = [msg for kind, msg in raw if kind == "error"]
    if errors or len(raw) < n:
        raise EdgeError("bench: " + ("; ".join(errors) if errors else "a worker died without a result"))
    results = []
    for _, d in raw:
        results.append(WorkerResult(**d))
    results.sort(key=lambda r: r.worker)
    return results, wall, meter


def _summarise(
    results: list[WorkerResult], wall: float, meter: PowerMeter, corpus: Path, batch: int, with_code: bool
) -> BenchResult:
    contracts = sum(r.contracts for r in results)
    busy_ns = {s: sum(r.stage_ns[s] for r in results) for s in _STAGES}
    stage_us = {s: (busy_ns[s] / contracts / 1e3 if contracts else float("nan")) for s in _STAGES}
    pipeline_ns = sum(busy_ns[s] for s in _STAGES if s != "read")
    lat = [x for r in results for x in r.latency_us]
    wts = [x for r in results for x in r.batch_sizes]
    bms = [x for r in results for x in r.batch_ms]
    watts = meter.result.watts
    cps = contracts / wall if wall > 0 else float("nan")
    return BenchResult(
        contracts=contracts,
        seconds=wall,
        workers=len(results),
        contracts_per_s=cps,
        contracts_per_s_per_worker=[r.contracts / r.seconds if r.seconds > 0 else float("nan") for r in results],
        pipeline_contracts_per_s=(contracts / (pipeline_ns / 1e9) * len(results)) if pipeline_ns else float("nan"),
        stage_us=stage_us,
        latency_us_p50=_percentile(lat, wts, 50),
        latency_us_p99=_percentile(lat, wts, 99),
        latency_basis="per contract, amortised over its batch: (featurize+score+explain+buffer) / batch size",
        batch_ms_p50=float(np.percentile(bms, 50)) if bms else float("nan"),
        batch_ms_p99=float(np.percentile(bms, 99)) if bms else float("nan"),
        rss_peak_mb=max((r.rss_peak_mb for r in results), default=0.0),
        rss_peak_mb_per_worker=[r.rss_peak_mb for r in results],
        watts=watts,
        watts_source=meter.result.source,
        contracts_per_s_per_w=(cps / watts) if watts else None,
        flagged=sum(r.flagged for r in results),
        bad_rows=sum(r.bad_rows for r in results),
        batch=batch,
        model_id=results[0].model_id if results else "",
        featurizer=results[0].backend if results else "",
        pinned_cpus=[r.cpu for r in results],
        corpus=corpus.name,
        buffered="codes+scores" if with_code else "scores",
    )
