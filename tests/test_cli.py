"""The `edge` command line as an operator uses it: run, status, demo, bad config."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ingest_to, make_config

EDGE = [sys.executable, "-m", "edge"]


def _edge(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=timeout)


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text('[node]\nws_url = "ws://127.0.0.1:1"\n\n[ingest]\nconfirmations = -3\n')
    r = _edge("run", "--config", str(cfg))
    assert r.returncode == 2
    assert r.stderr.strip() == "edge: config: ingest.confirmations: must be >= 0, got -3"


async def test_status_reads_the_outbox(chain_factory, tmp_path: Path) -> None:
    chain = await chain_factory(extra_args=("--no-mining",))
    await chain.rpc("anvil_mine", "0x9")
    await ingest_to(make_config(chain, tmp_path / "edge.sqlite"), 9)
    from edge.store.capabilities import CapabilityRow, put_capability
    from edge.store.db import Outbox

    async with Outbox(tmp_path / "edge.sqlite") as ob:
        for i, (status, flags) in enumerate((("ok", ("is_mintable", "is_proxy")), ("ok", ("is_mintable",)),
                                             ("timeout", ()))):
            await put_capability(ob, CapabilityRow(bytes([i]) * 32, "cap-1", status, flags, (), 1.0, 1.0))
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'[node]\nws_url = "{chain.ws_url}"\n\n[outbox]\npath = "edge.sqlite"\n\n[metrics]\nport = 0\n')
    r = _edge("status", "--config", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["chain_id"], info["cursor"], info["head"], info["lag"]) == (7201, 9, 9, 0)
    assert info["blocks"] == 10 and info["confirmed_blocks"] == 7  # confirmations = 3
    assert info["final_blocks"] == 7  # the old key, kept for scripts
    assert info["capabilities"] == {"by_status": {"ok": 2, "timeout": 1}, "by_flag": {"is_mintable": 2, "is_proxy": 1}}
    assert info["clique_signers"] is None  # anvil has no Clique seal: no signer set
    text = _edge("status", "--config", str(cfg))
    assert "clique signers" not in text.stdout
    assert "chain 7201: head 9  cursor 9  lag 0" in text.stdout
    assert "records: 10 blocks (7 confirmed)" in text.stdout
    assert "capabilities: 3 codes analysed (1 timed out); codes per flag: is_mintable 2, is_proxy 1" in text.stdout


def test_verify_json_keeps_the_old_last_hash_key() -> None:
    from edge.audit.verify import Verdict

    v = Verdict("0x01", 0, 63, "0x02", last_block_hash="0x" + "ab" * 32)
    d = v.as_json()
    assert d["last_block_hash"] == d["last_hash"] == "0x" + "ab" * 32 and d["ok"] is True


def test_status_without_outbox_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text('[node]\nws_url = "ws://127.0.0.1:1"\n')
    r = _edge("status", "--config", str(cfg))
    assert r.returncode == 2 and "no outbox at" in r.stderr


def test_run_stop_at_backfills_and_exits(tmp_path: Path) -> None:
    import asyncio

    from edge.devnet.anvil import DevChain

    async def go() -> subprocess.CompletedProcess[str]:
        async with DevChain("poa", 7201, 0, extra_args=("--no-mining",)) as chain:
            await chain.rpc("anvil_mine", "0x14")
            cfg = tmp_path / "edge.toml"
            cfg.write_text(f'[node]\nws_url = "{chain.ws_url}"\n\n[outbox]\npath = "edge.sqlite"\n\n[metrics]\nport = 0\n')
            return await asyncio.to_thread(_edge, "run", "--config", str(cfg), "--stop-at", "20", "--no-score")

    r = asyncio.run(go())
    assert r.returncode == 0, r.stderr
    assert "stopping: chain 7201 head 20 cursor 20 lag 0" in r.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end_and_matches_ground_truth() -> None:
    """One testnet on Hardhat's node (EDR), the other tiers on anvil (the fleet demo below
    runs every tier on anvil): every checkpoint anchored and verified."""
    r = _edge("demo", "--seconds", "6", "--json", "--testnet-client", "hardhat", timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    assert result["clients"] == {"poa": "anvil", "testnet-a": "hardhat", "testnet-b": "anvil", "mainnet": "anvil"}
    assert result["local"]["client"] == "anvil"
    assert result["checkpoints_anchored"] == result["verify_ok"] >= 5 and result["verify_fail"] == 0
    assert result["contracts"] == result["contracts_expected"] > 10
    assert result["logs"] == result["logs_expected"] > 20
    assert result["lag"] == 0
    assert 30.0 < result["agent_rss_peak_mb"] < 4096.0  # MiB; the interpreter alone is about 9
    assert result["scored_samples"] >= 1 and 0.0 < result["scored_p99_ms"] < 60_000.0
    assert math.isfinite(result["agent_rss_peak_mb"]) and math.isfinite(result["scored_p99_ms"])


@pytest.mark.slow
def test_fleet_demo_with_three_processes() -> None:
    r = _edge("demo", "--devices", "3", "--quorum", "2", "--seconds", "8", "--json", "--no-score", timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["ok"] is True and res["devices"] == 3 and res["quorum"] == 2
    assert set(res["clients"].values()) == {"anvil"}
    assert res["checkpoints_anchored"] >= 2 and res["duplicate_anchors"] == 0 and res["min_signers"] >= 2
    assert res["verify_fail"] == 0 and res["verify_ok"] == res["checkpoints_anchored"]
    assert sum(d["anchored"] for d in res["per_device"]) == res["checkpoints_anchored"]
