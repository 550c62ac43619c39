"""The agent's configuration: one TOML file, validated at start.

Every key is declared in a dataclass below with its type, default and bounds. Unknown
keys, wrong types and out-of-range values raise :class:`edge.errors.ConfigError` naming
the dotted key (``config: ingest.confirmations: must be >= 0, got -1``); the agent never
starts half-configured. Relative paths are resolved against the config file's folder.

Example (all keys optional except ``node.ws_url``)::

    [node]
    ws_url = "ws://127.0.0.1:8545"   # the local PoA node (WebSocket)
    chain_id = 7201                  # optional: refuse a node reporting another id
    request_timeout_s = 10.0
    reconnect_max_s = 30.0

    [ingest]
    start_block = 0
    confirmations = 5                # a block is final at head - number >= confirmations
    batch_blocks = 32                # blocks fetched per JSON-RPC batch
    watch = []                       # log emitters to keep (addresses); [] = all
    traces = "auto"                  # auto | trace_block | debug_trace | off

    [poa]
    engine = "auto"                  # auto | clique | aura | none
    authorities = []                 # sealer addresses allowed to sign blocks

    [outbox]
    path = "edge.sqlite"
    max_mb = 1024                    # ingest pauses at this size; nothing is dropped

    [scoring]
    model = ""                       # "" = the model shipped in models/risk.onnx
    batch_size = 256
    batch_seconds = 0.5
    threshold = -1.0                 # < 0: the model's own threshold

    [log]
    level = "info"
    stats_interval_s = 30.0
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from edge.errors import ConfigError

__all__ = [
    "Config",
    "NodeConfig",
    "IngestConfig",
    "PoaConfig",
    "OutboxConfig",
    "ScoringConfig",
    "LogConfig",
    "load_config",
    "parse_config",
]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """``[node]``: the local PoA node. ``ws_url`` must be ws:// or wss://."""

    ws_url: str = ""
    chain_id: int = 0
    request_timeout_s: float = 10.0
    reconnect_max_s: float = 30.0

    def _check(self) -> None:
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ConfigError("node.ws_url", f"must be a ws:// or wss:// URL, got {self.ws_url!r}")
        _min("node.chain_id", self.chain_id, 0)
        _min("node.request_timeout_s", self.request_timeout_s, 0.1)
        _min("node.reconnect_max_s", self.reconnect_max_s, 0.1)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """``[ingest]``: what to read and when it is final."""

    start_block: int = 0
    confirmations: int = 5
    batch_blocks: int = 32
    watch: tuple[str, ...] = ()
    traces: str = "auto"

    def _check(self) -> None:
        _min("ingest.start_block", self.start_block, 0)
        _min("ingest.confirmations", self.confirmations, 0)
        _min("ingest.batch_blocks", self.batch_blocks, 1)
        if self.batch_blocks > 1000:
            raise ConfigError("ingest.batch_blocks", f"must be <= 1000, got {self.batch_blocks}")
        for i, a in enumerate(self.watch):
            if not _ADDRESS.match(a):
                raise ConfigError(f"ingest.watch[{i}]", f"not a 20-byte hex address: {a!r}")
        _one_of("ingest.traces", self.traces, ("auto", "trace_block", "debug_trace", "off"))


@dataclass(frozen=True, slots=True)
class PoaConfig:
    """``[poa]``: the seal check (Clique EIP-225 / AuRa) and the authority set."""

    engine: str = "auto"
    authorities: tuple[str, ...] = ()

    def _check(self) -> None:
        _one_of("poa.engine", self.engine, ("auto", "clique", "aura", "none"))
        for i, a in enumerate(self.authorities):
            if not _ADDRESS.match(a):
                raise ConfigError(f"poa.authorities[{i}]", f"not a 20-byte hex address: {a!r}")


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """``[outbox]``: the SQLite outbox file and its size cap in MiB."""

    path: str = "edge.sqlite"
    max_mb: float = 1024.0

    def _check(self) -> None:
        if not self.path:
            raise ConfigError("outbox.path", "must not be empty")
        _min("outbox.max_mb", self.max_mb, 0.01)


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """``[scoring]``: the ONNX model and scoring batches (size and seconds)."""

    model: str = ""
    batch_size: int = 256
    batch_seconds: float = 0.5
    threshold: float = -1.0

    def _check(self) -> None:
        _min("scoring.batch_size", self.batch_size, 1)
        _min("scoring.batch_seconds", self.batch_seconds, 0.0)
        if self.threshold > 1.0:
            raise ConfigError("scoring.threshold", f"must be <= 1 (or < 0 for the model's), got {self.threshold}")


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``[log]``: level and how often a statistics line is written (seconds)."""

    level: str = "info"
    stats_interval_s: float = 30.0

    def _check(self) -> None:
        _one_of("log.level", self.level, ("debug", "info", "warning", "error"))
        _min("log.stats_interval_s", self.stats_interval_s, 1.0)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. Build it with :func:`load_config` / :func:`parse_config`."""

    node: NodeConfig = field(default_factory=NodeConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    poa: PoaConfig = field(default_factory=PoaConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    log: LogConfig = field(default_factory=LogConfig)
    base_dir: Path = Path(".")

    def resolve(self, p: str) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        path = Path(p).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)


def load_config(path: Path | str) -> Config:
    """Read and validate a TOML config file.

    Raises:
        ConfigError: unreadable file, TOML syntax error (with line), unknown section or
            key, wrong type, or a value out of range; the message names the key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("", f"cannot read {p}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError("", f"{p} is not UTF-8 text: {e}") from e
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"{p} is not valid TOML: {e}") from e
    return parse_config(raw, base_dir=p.resolve().parent)


def parse_config(raw: dict[str, Any], *, base_dir: Path = Path(".")) -> Config:
    """Validate an already-parsed TOML document (a dict) into a :class:`Config`.

    Raises: ConfigError naming the offending key.
    """
    sections: dict[str, Any] = {}
    hints = get_type_hints(Config)
    known = [f.name for f in dataclasses.fields(Config) if f.name != "base_dir"]
    for name, value in raw.items():
        if name not in known:
            raise ConfigError(name, f"unknown section; known sections: {', '.join(known)}")
        if not isinstance(value, dict):
            raise ConfigError(name, f"must be a table ([{name}]), got {type(value).__name__}")
        sections[name] = _build(hints[name], name, value)
    for name in known:
        sections.setdefault(name, hints[name]())
    cfg = Config(**sections, base_dir=base_dir)
    for name in known:
        getattr(cfg, name)._check()
    return cfg


def _build(cls: type[Any], section: str, values: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{section}.{key}"
        if key not in hints:
            raise ConfigError(dotted, f"unknown key; known keys: {', '.join(hints)}")
        kwargs[key] = _coerce(dotted, hints[key], value)
    return cls(**kwargs)


def _coerce(key: str, typ: Any, value: Any) -> Any:
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    if typ == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"must be a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(key, f"unsupported type {typ}")  # pragma: no cover - schema bug


def _min(key: str, value: float, lo: float) -> None:
    if value < lo:
        raise ConfigError(key, f"must be >= {lo:g}, got {value}")


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(key, f"must be one of {', '.join(allowed)}; got {value!r}")
