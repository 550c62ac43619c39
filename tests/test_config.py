"""Config validation: every bad key or value is an error that names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import DEPRECATED_KEYS, load_config, parse_config
from edge.errors import ConfigError

GOOD = {"node": {"ws_url": "ws://127.0.0.1:8545"}}


def test_minimal_config_has_documented_defaults(tmp_path: Path) -> None:
    cfg = parse_config(GOOD, base_dir=tmp_path)
    assert cfg.ingest.confirmations == 5 and cfg.ingest.batch_blocks == 32
    assert cfg.poa.engine == "auto" and cfg.outbox.max_mib == 1024.0
    assert cfg.resolve(cfg.outbox.path) == tmp_path / "edge.sqlite"


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({}, "node.ws_url", "ws:// or wss://"),
        ({"node": {"ws_url": "http://x"}}, "node.ws_url", "ws:// or wss://"),
        ({**GOOD, "nodes": {}}, "nodes", "unknown section"),
        ({"node": {"ws_url": "ws://x", "wsurl": 1}}, "node.wsurl", "unknown key"),
        ({**GOOD, "ingest": {"confirmations": -1}}, "ingest.confirmations", "must be >= 0"),
        ({**GOOD, "ingest": {"confirmations": "5"}}, "ingest.confirmations", "must be an integer"),
        ({**GOOD, "ingest": {"confirmations": True}}, "ingest.confirmations", "must be an integer"),
        ({**GOOD, "ingest": {"batch_blocks": 5000}}, "ingest.batch_blocks", "<= 1000"),
        ({**GOOD, "ingest": {"watch": ["0x12"]}}, "ingest.watch[0]", "not a 20-byte hex address"),
        ({**GOOD, "ingest": {"watch": "0x" + "1" * 40}}, "ingest.watch", "list of strings"),
        ({**GOOD, "ingest": {"traces": "always"}}, "ingest.traces", "must be one of"),
        ({**GOOD, "poa": {"engine": "pow"}}, "poa.engine", "must be one of"),
        ({**GOOD, "poa": {"authorities": ["0x" + "g" * 40]}}, "poa.authorities[0]", "not a 20-byte"),
        ({**GOOD, "poa": {"authorities": ["0x" + "a" * 40, "0x" + "A" * 40]}}, "poa.authorities[1]", "duplicate"),
        ({**GOOD, "poa": {"epoch": 0}}, "poa.epoch", "must be >= 1"),
        ({**GOOD, "poa": {"period_s": -1}}, "poa.period_s", "must be >= 0"),
        ({**GOOD, "poa": {"period_s": 1.5}}, "poa.period_s", "must be an integer"),
        ({**GOOD, "outbox": {"max_mib": 0}}, "outbox.max_mib", "must be >= 0.01"),
        ({**GOOD, "outbox": {"path": ""}}, "outbox.path", "must not be empty"),
        ({**GOOD, "scoring": {"threshold": 2.0}}, "scoring.threshold", "must be <= 1"),
        ({**GOOD, "log": {"level": "loud"}}, "log.level", "must be one of"),
        ({**GOOD, "log": 3}, "log", "must be a table"),
    ],
)
def test_bad_config_names_the_key(raw: dict, key: str, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_config(raw, base_dir=tmp_path)
    assert ei.value.key == key
    assert str(ei.value).startswith(f"config: {key}: ")
    assert fragment in str(ei.value)


RENAMED = [("outbox", "max_mb", "max_mib", 64.0), ("scoring", "batch_seconds", "batch_wait_s", 0.25),
           ("gpio", "hold_seconds", "hold_s", 1.5)]


def test_every_renamed_key_is_covered() -> None:
    assert {f"{s}.{old}": f"{s}.{new}" for s, old, new, _ in RENAMED} == DEPRECATED_KEYS


@pytest.mark.parametrize(("section", "old", "new", "value"), RENAMED)
def test_an_old_key_is_read_as_the_new_one_with_one_warning(
    section: str, old: str, new: str, value: float, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="edge.config"):
        cfg = parse_config({**GOOD, section: {old: value}}, base_dir=tmp_path)
    assert getattr(getattr(cfg, section), new) == value
    assert [r.getMessage() for r in caplog.records] == [f"{section}.{old} is deprecated: use {section}.{new}"]


@pytest.mark.parametrize(("section", "old", "new", "value"), RENAMED)
def test_a_new_key_is_read_without_a_warning(
    section: str, old: str, new: str, value: float, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="edge.config"):
        cfg = parse_config({**GOOD, section: {new: value}}, base_dir=tmp_path)
    assert getattr(getattr(cfg, section), new) == value and not caplog.records


@pytest.mark.parametrize(("section", "old", "new", "value"), RENAMED)
def test_an_old_and_a_new_key_together_are_an_error_naming_both(
    section: str, old: str, new: str, value: float, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_config({**GOOD, section: {new: value, old: value}}, base_dir=tmp_path)
    assert ei.value.key == f"{section}.{old}" and f"{section}.{new}" in str(ei.value)


def test_an_old_key_out_of_range_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: outbox\.max_mib: must be >= 0\.01"):
        parse_config({**GOOD, "outbox": {"max_mb": 0}}, base_dir=tmp_path)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "edge.toml"
    p.write_text('[node]\nws_url = "ws://x"\nconfirmations = \n')
    with pytest.raises(ConfigError, match=r"edge.toml is not valid TOML: .*line 3"):
        load_config(p)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read .*nope.toml"):
        load_config(tmp_path / "nope.toml")
