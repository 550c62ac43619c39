"""Shared fixtures: real anvil dev chains, configs, outbox dumps for comparisons."""

from __future__ import annotations

import asyncio
import gzip
import inspect
import io
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from edge.devnet.anvil import DevChain
from edge.config import Config, parse_config
from edge.agent import Agent

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONTRACTS_DATA = SHARED / "data" / "contracts"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding a ``slow`` test run first (order kept otherwise): with
    ``pytest -n 2 --dist loadfile --no-loadscope-reorder`` (``make test``) the long
    files start at once on both workers and the short ones fill in behind them."""
    heavy = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in heavy)


@pytest.fixture
async def chain_factory() -> AsyncIterator[Callable[..., Any]]:
    """Start anvils on free loopback ports; every one is stopped at teardown."""
    started: list[DevChain] = []

    async def make(name: str = "poa", chain_id: int = 7201, block_time: float = 0.0,
                   extra_args: tuple[str, ...] = ()) -> DevChain:
        c = DevChain(name, chain_id, block_time, extra_args=extra_args)
        await c.start()
        started.append(c)
        return c

    yield make
    for c in started:
        await c.stop()


def make_config(chain: DevChain, db: Path, **sections: dict[str, Any]) -> Config:
    """A config for ``chain`` with the outbox at ``db``; ``sections`` override keys."""
    raw: dict[str, Any] = {
        "node": {"ws_url": chain.ws_url, "chain_id": chain.chain_id, "reconnect_max_s": 1.0},
        "ingest": {"confirmations": 3},
        "outbox": {"path": str(db)},
    }
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    return parse_config(raw, base_dir=db.parent)


async def ingest_to(cfg: Config, stop_at: int) -> Agent:
    """Run an agent (no scoring) until its cursor reaches ``stop_at``."""
    async with Agent(cfg, score=False) as agent:
        await agent.run(stop_at=stop_at)
    return agent


def task_stacks() -> str:
    """Every asyncio task of the running loop with its stack (for a failure message)."""
    out = io.StringIO()
    for t in asyncio.all_tasks():
        out.write(f"--- {t.get_name()} {'(cancelling)' if t.cancelling() else ''}\n")
        t.print_stack(file=out)
    return out.getvalue()


@asynccontextmanager
async def running(agent: Agent, stop_timeout: float = 30.0) -> AsyncIterator[asyncio.Task[None]]:
    """``agent.run()`` as a task for the body; at exit it is cancelled and must end
    within ``stop_timeout`` s (else the test fails with every task's stack). An error
    the task ended with (other than the cancel) is raised."""
    task = asyncio.create_task(agent.run(), name="agent")
    try:
        yield task
    finally:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=stop_timeout)
        if not done:
            pytest.fail(f"agent did not stop within {stop_timeout:g} s of its cancel:\n{task_stacks()}")
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def eventually(what: str, cond: Callable[[], Any], timeout: float, *, every: float = 0.02,
                     why: Callable[[], str] | None = None) -> Any:
    """Poll ``cond()`` (plain or async) every ``every`` s until it returns something other
    than None or False, and return that: for state that sends no notification (another
    process's SQLite file, sockets or HTTP, GPIO mocks, a node's head). Fail naming
    ``what`` (and ``why()``) after ``timeout`` s; an exception ``cond`` raises (e.g. an
    assertion that the child process still lives) ends the wait at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        res = cond()
        if inspect.isawaitable(res):
            res = await res
        if res is not None and res is not False:
            return res
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}" + (f": {why()}" if why else ""))
        await asyncio.sleep(every)


async def until(agent: Agent, what: str, predicate: Callable[[Any], bool], timeout: float,
                task: asyncio.Task[None] | None = None) -> None:
    """Wait (by notification) until ``predicate(agent.ingester.stats)``; fail naming
    ``what``, the stats and every task's stack after ``timeout`` s, or at once when
    ``task`` (the agent's run) ends first."""
    waiter = asyncio.ensure_future(agent.ingester.wait_until(predicate))
    watch = {waiter} | ({task} if task is not None else set())
    done, _ = await asyncio.wait(watch, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        return
    waiter.cancel()
    if task is not None and task in done:
        pytest.fail(f"agent ended while waiting for {what}: {task.exception() if not task.cancelled() else 'cancelled'}")
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}; stats {agent.ingester.stats}\n{task_stacks()}")


async def mine_all(chain: DevChain, max_blocks: int = 200) -> int:
    """Mine blocks until the tx pool is empty; return the new head."""
    for _ in range(max_blocks):
        status = await chain.rpc("txpool_status")
        if int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0:
            break
        await chain.rpc("evm_mine")
    return int(await chain.rpc("eth_blockNumber"), 16)


def dump_outbox(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the chain-data tables, sorted (for equality of two outboxes)."""
    con = sqlite3.connect(db)
    try:
        out = {}
        for table, cols in (
            ("blocks", "chain_id, number, hash, parent_hash, timestamp, miner, tx_count, confirmed"),
            ("logs", "*"),
            ("contracts", "*"),
            ("cursor", "chain_id, block_number, block_hash"),
        ):
            out[table] = sorted(con.execute(f"SELECT {cols} FROM {table}").fetchall())
        out["codes"] = sorted(con.execute(
            "SELECT code_hash, code FROM codes WHERE code_hash IN (SELECT code_hash FROM contracts)").fetchall())
        return out
    finally:
        con.close()


def corpus_codes(n: int, *, path: Path | None = None) -> list[bytes]:
    """``n`` distinct real runtime bytecodes (<= 24,576 bytes) from the shared corpus."""
    p = path or CONTRACTS_DATA / "train.jsonl.gz"
    if not p.exists():
        pytest.skip(f"shared corpus not present at {p}")
    out: list[bytes] = []
    with gzip.open(p, "rt") as fh:
        for line in fh:
            code = bytes.fromhex(json.loads(line)["bytecode"][2:])
            if 0 < len(code) <= 24_576 and code[0] != 0xEF:
                out.append(code)
                if len(out) == n:
                    break
    return out


@pytest.fixture
def shared_corpus() -> Iterator[Path]:
    """Path of the labelled shared corpus (skips when absent)."""
    p = CONTRACTS_DATA / "train.jsonl.gz"
    if not p.exists():
        pytest.skip(f"shared corpus not present at {p}")
    yield p
