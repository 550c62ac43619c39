"""The operators' dashboards under monitoring/: the Grafana dashboard and the Prometheus rules.

- the dashboard validates against monitoring/grafana-dashboard.schema.json (JSON Schema
  2020-12) and lays out on Grafana's 24-column grid without overlaps;
- every metric named by the dashboard or by an alerting rule is one the agent really
  exports (a real scrape of :class:`edge.appliance.metrics.Metrics` over a real agent);
- ``promtool check rules`` accepts the rules and ``promtool test rules`` passes their unit
  tests (monitoring/alerts.test.yml); skipped when promtool (Debian package prometheus)
  is absent: ``make test-tools`` installs it;
- the two families added for these alerts (``edge_alarms``, ``edge_sender_low_balance``)
  carry the outbox's alarms and the senders' state.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.appliance.metrics import ALARM_KINDS, Metrics
from edge.config import parse_config
from edge.agent import Agent
from edge.appliance.power import FixedWatts
from edge.checkpoint.stage import CheckpointStage
from edge.store import chain_data

REPO = Path(__file__).resolve().parents[1]
MON = REPO / "monitoring"
DASHBOARD = MON / "grafana-dashboard.json"
RULES = MON / "alerts.yml"

_METRIC = re.compile(r"\b((?:edge|process)_[a-z_]+)\b")


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def _dashboard_exprs() -> list[str]:
    d = _dashboard()
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in d["templating"]["list"] if "definition" in v]
    return exprs


def _rule_exprs() -> list[str]:
    return re.findall(r"^\s+expr: (.+)$", RULES.read_text(), flags=re.M)


def test_dashboard_matches_its_schema_and_grid() -> None:
    schema = json.loads((MON / "grafana-dashboard.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    d = _dashboard()
    jsonschema.validate(d, schema, cls=jsonschema.Draft202012Validator)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"{p['title']}: wider than the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    for p in d["panels"]:
        for t in p.get("targets", []):
            assert 'instance=~"$instance"' in t["expr"], f"{p['title']}: {t['expr']} ignores the device picker"


def test_schema_rejects_a_broken_dashboard() -> None:
    schema = json.loads((MON / "grafana-dashboard.schema.json").read_text())
    d = _dashboard()
    panel = next(p for p in d["panels"] if p["type"] == "timeseries")
    panel["gridPos"]["w"] = 30
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(d, schema, cls=jsonschema.Draft202012Validator)
    d = _dashboard()
    next(p for p in d["panels"] if p["type"] == "stat")["targets"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(d, schema, cls=jsonschema.Draft202012Validator)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


async def _full_scrape(tmp_path: Path) -> str:
    """A scrape of an agent with every stage's families present (scorer, checkpoints, forward)."""
    cfg = parse_config({"node": {"ws_url": "ws://127.0.0.1:1"},
                        "outbox": {"path": str(tmp_path / "e.sqlite"), "max_mib": 64}})
    async with Agent(cfg, score=True) as agent, Metrics(0, power=FixedWatts(2.5)) as m:
        agent.stats.chain_id = 7201
        agent.checkpointer = CheckpointStage(agent.outbox, 7201, every_blocks=16)
        # the forward stage needs funded keys and three chains; its counters and senders' flags
        # are all the metrics read of it, so a stand-in with those attributes is enough here
        agent.forwarder = SimpleNamespace(  # type: ignore[assignment]
            stats=SimpleNamespace(checkpoints_anchored=2),
            senders={7301: SimpleNamespace(chain_id=7301, paused_low_balance=True),
                     7302: SimpleNamespace(chain_id=7302, paused_low_balance=False)},
            mainnet=SimpleNamespace(chain_id=7401, paused_low_balance=False))
        await chain_data.add_alarm(agent.outbox, 7201, 40, "divergence", "root differs from a quorum's")
        await chain_data.add_alarm(agent.outbox, 7201, 41, "divergence", "again")
        await chain_data.add_alarm(agent.outbox, 7201, 12, "foreign_sealer", "block 12 sealed by 0x00..")
        await m.update(agent)
        return _scrape(m.port)


def _exported_names(text: str) -> set[str]:
    names: set[str] = set()
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        if fam.type == "counter":
            names.add(fam.name + "_total")
        names.update(s.name for s in fam.samples)
    return names


async def test_every_metric_named_by_dashboard_and_rules_is_exported(tmp_path: Path) -> None:
    exported = _exported_names(await _full_scrape(tmp_path))
    used = {name for e in _dashboard_exprs() + _rule_exprs() for name in _METRIC.findall(e)}
    assert len(used) >= 20, sorted(used)
    missing = sorted(used - exported)
    assert not missing, f"named but not exported by the agent: {missing}"


async def test_alarm_and_low_balance_families(tmp_path: Path) -> None:
    text = await _full_scrape(tmp_path)
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for fam in text_string_to_metric_families(text) for s in fam.samples}
    alarms = {dict(k[1])["kind"]: v for k, v in got.items() if k[0] == "edge_alarms"}
    assert alarms == {**dict.fromkeys(ALARM_KINDS, 0.0), "divergence": 2.0, "foreign_sealer": 1.0}
    low = {dict(k[1])["chain_id"]: v for k, v in got.items() if k[0] == "edge_sender_low_balance"}
    assert low == {"7301": 1.0, "7302": 0.0, "7401": 0.0}


async def test_no_forward_stage_no_sender_series(tmp_path: Path) -> None:
    cfg = parse_config({"node": {"ws_url": "ws://127.0.0.1:1"}, "outbox": {"path": str(tmp_path / "e.sqlite")}})
    async with Agent(cfg, score=False) as agent, Metrics(0, power=None) as m:
        await m.update(agent)
        text = _scrape(m.port)
    assert "# TYPE edge_sender_low_balance gauge" in text
    assert not [s for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "edge_sender_low_balance"]


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool (Debian package prometheus) is not installed: make test-tools installs it")
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 15 rules found" in check.stdout
    unit = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"], capture_output=True, text=True,
                          timeout=120, cwd=MON)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert "SUCCESS" in unit.stdout
