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


def test_smoke_check_compares_the_capability_digest_across_architectures(tmp_path: Path) -> None:
    """arm-check's judge: a capability digest that differs between x86 and arm64 fails it."""
    import importlib.util
    import json
    import sys

    spec = importlib.util.spec_from_file_location("smoke", REPO / "image" / "smoke.py")
    assert spec is not None and spec.loader is not None
    smoke = importlib.util.module_from_spec(spec)
    sys.modules["smoke"] = smoke  # its dataclasses look their module up
    try:
        spec.loader.exec_module(smoke)
    finally:
        del sys.modules["smoke"]
    common = {"ok": True, "scored": 200, "checks": {"signature_verified": True}, "capability_codes": 40,
              "capability_flags": 30, "capabilities_sha256": "ab" * 32}
    host, arm = tmp_path / "host.json", tmp_path / "arm.json"
    host.write_text(json.dumps({**common, "arch": "x86_64"}) + "\n")
    arm.write_text(json.dumps({**common, "arch": "aarch64"}) + "\n")
    assert smoke.check(arm, host, min_scored=100, require_backend=None) == []
    arm.write_text(json.dumps({**common, "arch": "aarch64", "capabilities_sha256": "cd" * 32}) + "\n")
    problems = smoke.check(arm, host, min_scored=100, require_backend=None)
    assert len(problems) == 1 and problems[0].startswith("capabilities_sha256 differs")
    assert "capabilities" in smoke._SAME_ACROSS_ARCH[-3]
