"""The Pi image's pinned aarch64 lock stays in step with pyproject's runtime deps."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, str]:
    text = (REPO / "image" / "requirements-aarch64.txt").read_text()
    return {m.group(1).lower().replace("_", "-"): m.group(2)
            for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.M)}


def test_every_runtime_dependency_is_locked_with_a_hash() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    lock = _lock()
    text = (REPO / "image" / "requirements-aarch64.txt").read_text()
    assert text.count("--hash=sha256:") >= len(lock)
    for dep in deps:
        name = re.split(r"[=<>\[ ]", dep, maxsplit=1)[0].lower()
        assert name in lock, f"{name} missing from image/requirements-aarch64.txt (run arm-check.sh --relock)"
        pinned = re.search(r"==([^,;\s]+)", dep)
        if pinned:
            assert lock[name] == pinned.group(1), f"{name}: pyproject pins {pinned.group(1)}, lock has {lock[name]}"


def test_unit_runs_the_agent_with_the_boot_partition_config() -> None:
    unit = (REPO / "image" / "edge.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    assert "--config /boot/firmware/edge.toml" in unit
