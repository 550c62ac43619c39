"""The peer of ``ingest_vs_etl.py``: ethereum-etl 2.4.2's stream adapter on one chain.

Runs under the throwaway ethereum-etl venv that ``ingest_vs_etl.py`` builds under
``build/`` (never under the project's venv: ethereum-etl 2.4.2 pins web3 5). It reads
blocks ``0..END`` from a node over HTTP with ``EthStreamerAdapter`` (entity types block,
log and contract, so it fetches what the edge ingest stores: blocks with their
transactions, receipts and logs, ``trace_block`` traces and the contracts they create),
in ranges of ``--batch-blocks`` blocks, as ``ethereumetl stream`` does, and prints one
JSON line: blocks, logs, contracts, seconds (the export loop only, after imports),
rss_peak_mb (ru_maxrss of this process).

Fair-comparison settings (printed in the JSON as ``settings``):

- ethereum-etl disassembles every contract to list its function sighashes (about 97% of
  its time on this chain); unless ``--shipped`` is given that analysis is switched off
  (``EthContractService.get_function_sighashes`` returns no sighashes, so the ERC-20/721
  checks see none).
- items are counted in memory (no file or console output), which favours the peer: the
  edge ingest writes every record to SQLite.

Usage (from ingest_vs_etl.py): ``build/etl-venv/bin/python benchmarks/etl_peer.py
--url http://127.0.0.1:PORT --end N [--batch-blocks 32] [--batch-size 32]
[--max-workers 5] [--shipped]``
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time


class CountingExporter:
    """An ethereum-etl item exporter that only counts items per ``type``."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def open(self) -> None:
        """Nothing to open."""

    def export_items(self, items: list[dict]) -> None:  # type: ignore[type-arg]
        """Count a list of items."""
        for item in items:
            self.export_item(item)

    def export_item(self, item: dict) -> None:  # type: ignore[type-arg]
        """Count one item by its ``type`` field."""
        t = str(item.get("type"))
        self.counts[t] = self.counts.get(t, 0) + 1

    def close(self) -> None:
        """Nothing to close."""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--end", type=int, required=True)
    ap.add_argument("--batch-blocks", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-workers", type=int, default=5)
    ap.add_argument("--shipped", action="store_true", help="leave the bytecode analysis on")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from ethereumetl.enumeration.entity_type import EntityType
    from ethereumetl.providers.auto import get_provider_from_uri
    from ethereumetl.service.eth_contract_service import EthContractService
    from ethereumetl.streaming.eth_streamer_adapter import EthStreamerAdapter
    from ethereumetl.thread_local_proxy import ThreadLocalProxy

    if not args.shipped:
        EthContractService.get_function_sighashes = lambda self, bytecode: []  # type: ignore[method-assign]
    exporter = CountingExporter()
    adapter = EthStreamerAdapter(
        batch_web3_provider=ThreadLocalProxy(lambda: get_provider_from_uri(args.url, batch=True)),
        item_exporter=exporter,
        batch_size=args.batch_size,
        max_workers=args.max_workers,
        entity_types=(EntityType.BLOCK, EntityType.LOG, EntityType.CONTRACT),
    )
    adapter.open()
    t0 = time.perf_counter()
    start = 0
    while start <= args.end:
        end = min(args.end, start + args.batch_blocks - 1)
        adapter.export_all(start, end)
        start = end + 1
    dt = time.perf_counter() - t0
    adapter.close()
    c = exporter.counts
    print(json.dumps({
        "tool": "ethereum-etl 2.4.2 EthStreamerAdapter",
        "blocks": c.get("block", 0),
        "logs": c.get("log", 0),
        "contracts": c.get("contract", 0),
        "seconds": round(dt, 4),
        "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "settings": {
            "bytecode_analysis": "on (as shipped)" if args.shipped else "off (get_function_sighashes -> [])",
            "entity_types": ["block", "log", "contract"],
            "batch_blocks": args.batch_blocks, "batch_size": args.batch_size, "max_workers": args.max_workers,
            "transport": "HTTP JSON-RPC batches", "output": "items counted in memory (no I/O)",
        },
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
