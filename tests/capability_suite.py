"""The capability ground-truth suite's artifacts (contracts/capabilities/artifacts), as the
per-pattern tests read them: oldest and newest compiler, optimizer off / on."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from edge.scoring import capabilities as cap

__all__ = ["ARTIFACTS", "SETTINGS", "suite_report"]

ARTIFACTS = Path(__file__).resolve().parents[1] / "contracts" / "capabilities" / "artifacts"
SETTINGS = ("solc-0.4.26-noopt", "solc-0.8.37-opt")


@lru_cache(maxsize=None)
def suite_report(setting: str, name: str) -> cap.CapabilityReport:
    """The capability report of contract ``name`` of the suite built with ``setting``
    (an artifact file stem, e.g. ``solc-0.8.37-opt``), analysed with a 30 s budget."""
    data = json.loads((ARTIFACTS / f"{setting}.json").read_text())
    return cap.analyze(bytes.fromhex(data["contracts"][name]["deployedBytecode"][2:]), budget_s=30)
