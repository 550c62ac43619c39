"""A dev chain filled with a benchmark workload: real runtimes from a corpus and CRUD writes.

What the ingest benchmarks (``benchmarks/ingest_throughput.py``, ``verify_cost.py``,
``ingest_vs_etl.py``) run against: an anvil started with :data:`WORKLOAD_ANVIL_ARGS`
(``--no-mining``, 300M gas blocks) and filled by :func:`fill_chain`, in steps of 50
runtimes: half deployed top-level, half created by a contract (``Spawner.spawnMany``, so
``trace_block`` is needed to see them), plus CRUD writes (one log each), every step
mined into blocks until the pool is empty. The :class:`edge.devnet.activity.Activity`
returned holds the ground truth (every contract and log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from edge.chain.records import EIP170_MAX_CODE_SIZE
from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChain
from edge.devnet.corpus import hex_to_code, iter_corpus

__all__ = ["WORKLOAD_ANVIL_ARGS", "corpus_codes", "fill_chain", "mine_all"]

WORKLOAD_ANVIL_ARGS: Final[tuple[str, ...]] = ("--no-mining", "--gas-limit", "300000000")
"""anvil flags of the workload chain: blocks only when mined, 300M gas per block."""


def corpus_codes(corpus: Path | str, n: int) -> list[bytes]:
    """The first ``n`` deployable runtimes of a corpus (non-empty, at most the EIP-170
    size, not starting with 0xEF: EIP-3541), in corpus order; fewer if it has fewer.

    Raises:
        BytecodeError: a row whose bytecode is not hex. EdgeError: unreadable corpus.
    """
    codes: list[bytes] = []
    for row in iter_corpus(corpus):
        c = hex_to_code(row.bytecode, "corpus")
        if 0 < len(c) <= EIP170_MAX_CODE_SIZE and c[0] != 0xEF:
            codes.append(c)
        if len(codes) == n:
            break
    return codes


async def mine_all(chain: DevChain) -> int:
    """Mine (``evm_mine``) until the node's pool has nothing pending or queued; returns the head."""
    while True:
        st = await chain.rpc("txpool_status")
        if int(st["pending"], 16) == 0 and int(st["queued"], 16) == 0:
            return int(await chain.rpc("eth_blockNumber"), 16)
        await chain.rpc("evm_mine")


async def fill_chain(chain: DevChain, codes: list[bytes], writes: int, *, step: int = 50) -> tuple[int, Activity]:
    """Deploy ``codes`` and send about ``writes`` CRUD writes on a ``--no-mining`` chain.

    Args:
        chain: a started anvil (:data:`WORKLOAD_ANVIL_ARGS`). codes: runtimes to deploy.
        writes: CRUD writes in all (spread over the steps; at least one per step).
        step: runtimes per step (half top-level, half spawned).

    Returns:
        ``(head, activity)``: the block number of the last block, and the ground truth
        (contracts include the CrudStore and Spawner :meth:`Activity.setup` deploys;
        ``activity.failed`` counts reverted transactions).

    Raises:
        DevChainError: the node refused a call or a transaction was not mined in time.
    """
    act = Activity(chain)
    await act.setup(mine=True)
    writes_per = max(1, writes * step // max(1, len(codes)))
    for i in range(0, len(codes), step):
        await act.deploy(codes[i:i + step][: step // 2])
        await act.spawn(codes[i:i + step][step // 2:])
        await act.crud_writes(writes_per)
        await mine_all(chain)
        await act.settle()
    return await mine_all(chain), act
