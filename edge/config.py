"""The agent's configuration: one TOML file, validated at start.

Every key is declared in a dataclass below with its type, default and bounds. Unknown
keys, wrong types and out-of-range values raise :class:`edge.errors.ConfigError` naming
the dotted key (``config: ingest.confirmations: must be >= 0, got -1``); the agent never
starts half-configured. Relative paths are resolved against the config file's folder.
Renamed keys (:data:`DEPRECATED_KEYS`: ``outbox.max_mb``, ``scoring.batch_seconds``,
``gpio.hold_seconds``) are still read under their old name, with one warning each.

Example (all keys optional except ``node.ws_url``)::

    [node]
    ws_url = "ws://127.0.0.1:8545"   # the local PoA node (WebSocket)
    chain_id = 7201                  # optional: refuse a node reporting another id
    request_timeout_s = 10.0
    reconnect_max_s = 30.0

    [ingest]
    start_block = 0
    confirmations = 5                # a block is confirmed at head - number >= confirmations
    batch_blocks = 32                # blocks fetched per JSON-RPC batch
    max_inflight_mib = 8             # answer bytes (MiB) of the batch being written + the one fetched ahead; 0: no fetch ahead
    watch = []                       # log emitters to keep (addresses); [] = all
    traces = "auto"                  # auto | trace_block | debug_trace | off
    verify = "strict"                # strict | receipts | headers | off: what is checked
                                     # against the sealed header before it is stored
    require_proofs = false           # strict on a node without eth_getProof: wait (true)
                                     # or warn once and check receipts only (false)

    [poa]
    engine = "auto"                  # auto | clique | aura | none
    authorities = []                 # Clique: [] = the genesis set + votes (EIP-225); set = the
                                     # expected set (alarm when the chain's differs). AuRa: validators
    period_s = 0                     # Clique block period (genesis config.clique.period), seconds
    epoch = 30000                    # Clique epoch length (genesis config.clique.epoch), blocks

    [outbox]
    path = "edge.sqlite"
    max_mib = 1024                   # MiB; ingest pauses at this size; nothing is dropped

    [scoring]
    model = ""                       # "" = the model shipped in models/risk.onnx
    batch_size = 256
    batch_wait_s = 0.5               # longest wait (s) for a partial batch to fill
    threshold = -1.0                 # < 0: the model's own threshold

    [capabilities]                   # what each code lets someone do (off the hot path)
    enabled = true
    budget_s = 5.0                   # analysis time budget per distinct code (s)
    nice = 10                        # the worker's CPU priority below the agent's (0-19)
    alert_flags = []                 # flags that light the alert LED; [] = none (the score alerts)

    [log]
    level = "info"
    stats_interval_s = 30.0

    [device]                         # this device's secp256k1 key (eth-account v3 keystore)
    keystore = "device.json"
    passphrase = "credential:edge-passphrase"   # file:PATH | env:NAME | credential:NAME

    [checkpoint]
    every_blocks = 64                # B: ranges [k*B, (k+1)*B), cut once confirmed

    [forward]                        # public tiers; off when absent
    enabled = true
    auditors = ["0x02..."]           # auditors' secp256k1 public keys (hex)
    batch = 1                        # K checkpoints per mainnet anchor
    batch_max_wait_s = 300.0         # ...or fewer, once the oldest waited this long
    chunk_bytes = 2048
    max_fee_gwei = 500.0             # EIP-1559 max fee cap
    confirmations = 2                # on the public chains

    [[forward.testnets]]             # >= 1 (>= 2 to spread chunks)
    url = "http://127.0.0.1:8546"
    chain_id = 7301
    store = "0x..."                  # CrudStore address

    [forward.mainnet]
    url = "http://127.0.0.1:8548"
    chain_id = 7401
    anchor = "0x..."                 # Anchor address

    [gpio]                           # status LED, alert LED / buzzer, button (BCM pins)
    enabled = false
    pin_factory = ""                 # "" = gpiozero's default; "mock" = MockFactory
    status_led = 17
    alert_led = 27
    buzzer = -1                      # -1: none
    button = 22
    hold_s = 3.0                     # held this long (s): clean shutdown

    [metrics]                        # Prometheus text, loopback only
    enabled = true
    port = 9108

    [fleet]                          # M-of-N devices share the sync duty
    enabled = false
    attestations = "0x..."           # Attestations contract on the local chain
    rpc_url = ""                     # local chain HTTP JSON-RPC ("" = node.ws_url over http)
    takeover_s = 30.0                # the i-th device takes over after i x this
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from edge.errors import ConfigError

__all__ = [
    "Config",
    "DeviceConfig",
    "CheckpointConfig",
    "ForwardConfig",
    "TestnetConfig",
    "MainnetConfig",
    "GpioConfig",
    "FleetConfig",
    "MetricsConfig",
    "NodeConfig",
    "IngestConfig",
    "PoaConfig",
    "OutboxConfig",
    "ScoringConfig",
    "CapabilitiesConfig",
    "LogConfig",
    "load_config",
    "parse_config",
    "dump_toml",
    "MAX_BLOCK_NUMBER",
    "MAX_CONFIRMATIONS",
    "DEPRECATED_KEYS",
]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

_log = logging.getLogger("edge.config")

DEPRECATED_KEYS: dict[str, str] = {
    "outbox.max_mb": "outbox.max_mib",
    "scoring.batch_seconds": "scoring.batch_wait_s",
    "gpio.hold_seconds": "gpio.hold_s",
}
"""Old dotted key -> its new name. An old key is still read (one WARNING naming both);
giving the old and the new key of one setting is a :class:`ConfigError`."""

MAX_BLOCK_NUMBER = 2**63 - 1
"""Largest block number the outbox can hold (SQLite INTEGER is a signed 64-bit int)."""
MAX_CONFIRMATIONS = 1_000_000
"""Largest ``ingest.confirmations``: beyond it nothing would ever become confirmed."""


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
        _url("node.ws_url", self.ws_url)
        _min("node.chain_id", self.chain_id, 0)
        _range("node.request_timeout_s", self.request_timeout_s, 0.1, 3600.0)
        _range("node.reconnect_max_s", self.reconnect_max_s, 0.1, 3600.0)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """``[ingest]``: what to read and when it is confirmed."""

    start_block: int = 0
    confirmations: int = 5
    batch_blocks: int = 32
    max_inflight_mib: float = 8.0
    watch: tuple[str, ...] = ()
    traces: str = "auto"
    verify: str = "strict"
    require_proofs: bool = False

    def _check(self) -> None:
        _range("ingest.start_block", self.start_block, 0, MAX_BLOCK_NUMBER)
        _range("ingest.confirmations", self.confirmations, 0, MAX_CONFIRMATIONS)
        _min("ingest.batch_blocks", self.batch_blocks, 1)
        if self.batch_blocks > 1000:
            raise ConfigError("ingest.batch_blocks", f"must be <= 1000, got {self.batch_blocks}")
        _range("ingest.max_inflight_mib", self.max_inflight_mib, 0.0, 4096.0)
        for i, a in enumerate(self.watch):
            if not _ADDRESS.match(a):
                raise ConfigError(f"ingest.watch[{i}]", f"not a 20-byte hex address: {a!r}")
        _one_of("ingest.traces", self.traces, ("auto", "trace_block", "debug_trace", "off"))
        _one_of("ingest.verify", self.verify, ("strict", "receipts", "headers", "off"))


@dataclass(frozen=True, slots=True)
class PoaConfig:
    """``[poa]``: the seal check (Clique EIP-225 / AuRa) and the authority set.

    For Clique ``authorities`` is optional: empty = take the signer set from the genesis
    (or the epoch checkpoint before ``ingest.start_block``) and follow the votes; set = the
    set the operator expects (an ``expected_set_mismatch`` alarm when the chain's differs).
    ``period_s`` (seconds, >= 0) and ``epoch`` (blocks, >= 1) are the chain's Clique
    parameters (geth genesis ``config.clique``); all devices of a fleet must agree on
    ``epoch``, which decides where votes reset.
    """

    engine: str = "auto"
    authorities: tuple[str, ...] = ()
    period_s: int = 0
    epoch: int = 30000

    def _check(self) -> None:
        _one_of("poa.engine", self.engine, ("auto", "clique", "aura", "none"))
        seen: set[str] = set()
        for i, a in enumerate(self.authorities):
            if not _ADDRESS.match(a):
                raise ConfigError(f"poa.authorities[{i}]", f"not a 20-byte hex address: {a!r}")
            if a.lower() in seen:
                raise ConfigError(f"poa.authorities[{i}]", f"duplicate address {a}")
            seen.add(a.lower())
        _min("poa.period_s", self.period_s, 0)
        _min("poa.epoch", self.epoch, 1)


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """``[outbox]``: the SQLite outbox file and its size cap in MiB."""

    path: str = "edge.sqlite"
    max_mib: float = 1024.0

    def _check(self) -> None:
        if not self.path:
            raise ConfigError("outbox.path", "must not be empty")
        _range("outbox.max_mib", self.max_mib, 0.01, 2.0**23)  # 8 TiB


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """``[scoring]``: the ONNX model and scoring batches (size and seconds)."""

    model: str = ""
    batch_size: int = 256
    batch_wait_s: float = 0.5
    threshold: float = -1.0

    def _check(self) -> None:
        _min("scoring.batch_size", self.batch_size, 1)
        _range("scoring.batch_wait_s", self.batch_wait_s, 0.0, 3600.0)
        if self.threshold > 1.0:
            raise ConfigError("scoring.threshold", f"must be <= 1 (or < 0 for the model's), got {self.threshold}")


@dataclass(frozen=True, slots=True)
class CapabilitiesConfig:
    """``[capabilities]``: the capability analysis (:mod:`edge.scoring.analysis`): on or
    off, its time budget per distinct code (seconds), how far below the agent its worker
    process runs on the CPU (``nice``, added to the agent's niceness, setpriority(2)), and
    which flags (names of :data:`edge.scoring.capabilities.FLAG_NAMES`) light the alert LED
    by themselves."""

    enabled: bool = True
    budget_s: float = 5.0
    nice: int = 10
    alert_flags: tuple[str, ...] = ()

    def _check(self) -> None:
        _range("capabilities.budget_s", self.budget_s, 0.01, 3600.0)
        _range("capabilities.nice", self.nice, 0, 19)
        for name in self.alert_flags:  # the names themselves are checked by the stage (scoring layer)
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ConfigError("capabilities.alert_flags", f"not a flag name: {name!r}")


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``[log]``: level and how often a statistics line is written (seconds)."""

    level: str = "info"
    stats_interval_s: float = 30.0

    def _check(self) -> None:
        _one_of("log.level", self.level, ("debug", "info", "warning", "error"))
        _range("log.stats_interval_s", self.stats_interval_s, 1.0, 86400.0)


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """``[device]``: the keystore file and where its passphrase comes from."""

    keystore: str = ""
    passphrase: str = ""

    def _check(self) -> None:
        if self.passphrase and not self.passphrase.startswith(("file:", "env:", "credential:")):
            raise ConfigError("device.passphrase", "must be file:PATH, env:NAME or credential:NAME")


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    """``[checkpoint]``: B, the length of a checkpoint's block range."""

    every_blocks: int = 64

    def _check(self) -> None:
        _min("checkpoint.every_blocks", self.every_blocks, 1)


@dataclass(frozen=True, slots=True)
class TestnetConfig:
    """One ``[[forward.testnets]]`` entry: HTTP JSON-RPC url, chain id, CrudStore address."""

    url: str = ""
    chain_id: int = 0
    store: str = ""

    def _check_at(self, key: str) -> None:
        _url(f"{key}.url", self.url)
        _min(f"{key}.chain_id", self.chain_id, 1)
        _address(f"{key}.store", self.store)


@dataclass(frozen=True, slots=True)
class MainnetConfig:
    """``[forward.mainnet]``: HTTP JSON-RPC url, chain id, Anchor address."""

    url: str = ""
    chain_id: int = 0
    anchor: str = ""

    def _check_at(self, key: str) -> None:
        _url(f"{key}.url", self.url)
        _min(f"{key}.chain_id", self.chain_id, 1)
        _address(f"{key}.anchor", self.anchor)


@dataclass(frozen=True, slots=True)
class ForwardConfig:
    """``[forward]``: auditors, batching, chunking, fees, and the public chains."""

    enabled: bool = False
    auditors: tuple[str, ...] = ()
    batch: int = 1
    batch_max_wait_s: float = 300.0
    chunk_bytes: int = 2048
    max_fee_gwei: float = 500.0
    confirmations: int = 2
    testnets: tuple[TestnetConfig, ...] = ()
    mainnet: MainnetConfig = field(default_factory=MainnetConfig)

    def _check(self) -> None:
        if not self.enabled:
            return
        if not self.auditors:
            raise ConfigError("forward.auditors", "at least one auditor public key is needed")
        for i, a in enumerate(self.auditors):
            try:
                raw = bytes.fromhex(a[2:] if a.startswith("0x") else a)
            except ValueError:
                raw = b""
            if len(raw) not in (33, 65) or raw[0] not in (2, 3, 4):
                raise ConfigError(f"forward.auditors[{i}]", "not a secp256k1 public key (33 or 65 bytes hex)")
        if not 1 <= self.batch <= 256:
            raise ConfigError("forward.batch", f"must be 1..256, got {self.batch}")
        _min("forward.batch_max_wait_s", self.batch_max_wait_s, 0.0)
        _min("forward.chunk_bytes", self.chunk_bytes, 256)
        if self.chunk_bytes > 8192:
            raise ConfigError("forward.chunk_bytes", f"must be <= 8192 (one chunk must fit in a transaction), "
                                                     f"got {self.chunk_bytes}")
        _range("forward.max_fee_gwei", self.max_fee_gwei, 0.000001, 1e9)
        _min("forward.confirmations", self.confirmations, 0)
        if not self.testnets:
            raise ConfigError("forward.testnets", "at least one [[forward.testnets]] entry is needed")
        for i, t in enumerate(self.testnets):
            t._check_at(f"forward.testnets[{i}]")
        self.mainnet._check_at("forward.mainnet")


@dataclass(frozen=True, slots=True)
class GpioConfig:
    """``[gpio]``: BCM pin numbers (-1 = not fitted) and the pin factory."""

    enabled: bool = False
    pin_factory: str = ""
    status_led: int = 17
    alert_led: int = 27
    buzzer: int = -1
    button: int = 22
    hold_s: float = 3.0

    def _check(self) -> None:
        _one_of("gpio.pin_factory", self.pin_factory, ("", "mock", "lgpio", "rpigpio", "pigpio", "native"))
        pins: dict[int, str] = {}
        for name in ("status_led", "alert_led", "buzzer", "button"):
            pin = getattr(self, name)
            if pin != -1 and not 0 <= pin <= 27:
                raise ConfigError(f"gpio.{name}", f"must be a BCM pin 0..27 or -1, got {pin}")
            if pin != -1 and pin in pins:
                raise ConfigError(f"gpio.{name}", f"pin {pin} is already used by gpio.{pins[pin]}")
            pins[pin] = name
        _range("gpio.hold_s", self.hold_s, 0.5, 60.0)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: Prometheus text exposition on 127.0.0.1:port (never other hosts)."""

    enabled: bool = True
    port: int = 9108

    def _check(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("metrics.port", f"must be 0..65535 (0: any free port), got {self.port}")


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """``[fleet]``: the Attestations contract on the local chain, its HTTP endpoint, and
    the takeover timeout (seconds) of the rotating sync duty."""

    enabled: bool = False
    attestations: str = ""
    rpc_url: str = ""
    takeover_s: float = 30.0

    def _check(self) -> None:
        if not self.enabled:
            return
        _address("fleet.attestations", self.attestations)
        if self.rpc_url:
            _url("fleet.rpc_url", self.rpc_url)
        _range("fleet.takeover_s", self.takeover_s, 1.0, 86400.0)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. Build it with :func:`load_config` / :func:`parse_config`."""

    node: NodeConfig = field(default_factory=NodeConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    poa: PoaConfig = field(default_factory=PoaConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    capabilities: CapabilitiesConfig = field(default_factory=CapabilitiesConfig)
    log: LogConfig = field(default_factory=LogConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    forward: ForwardConfig = field(default_factory=ForwardConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
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
    if cfg.fleet.enabled:
        if not cfg.forward.enabled:
            raise ConfigError("fleet.enabled", "needs [forward] enabled (the duty holder forwards)")
    if (cfg.forward.enabled or cfg.fleet.enabled) and not cfg.device.keystore:
        raise ConfigError("device.keystore", "a device keystore is needed to sign checkpoints")
    return cfg


def _build(cls: type[Any], section: str, values: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{section}.{key}"
        new = DEPRECATED_KEYS.get(dotted)
        if new is not None:
            key = new.rpartition(".")[2]
            if key in values:
                raise ConfigError(dotted, f"deprecated name of {new}, which is also given; keep only {new}")
            _log.warning("%s is deprecated: use %s", dotted, new)
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
        if not -(2**63) <= value < 2**63:
            raise ConfigError(key, f"must be <= {2**63 - 1} (a 64-bit integer), got {value}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        try:
            f = float(value)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise ConfigError(key, f"must be a finite number, got {value!r}")
        return f
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    if typ == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"must be a list of strings, got {value!r}")
        return tuple(value)
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a table, got {value!r}")
        return _build(typ, key, value)  # type: ignore[arg-type]
    args = get_args(typ)
    if get_origin(typ) is tuple and len(args) == 2 and args[1] is Ellipsis and dataclasses.is_dataclass(args[0]):
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(key, f"must be an array of tables ([[{key}]]), got {value!r}")
        return tuple(_build(args[0], f"{key}[{i}]", v) for i, v in enumerate(value))  # type: ignore[arg-type]
    raise ConfigError(key, f"unsupported type {typ}")  # pragma: no cover - schema bug


def _min(key: str, value: float, lo: float) -> None:
    if value < lo:
        raise ConfigError(key, f"must be >= {lo:g}, got {value}")


def _range(key: str, value: float, lo: float, hi: float) -> None:
    _min(key, value, lo)
    if value > hi:
        raise ConfigError(key, f"must be <= {hi:g}, got {value}")


def _url(key: str, value: str) -> None:
    """A URL checked as far as can be without connecting (RFC 3986 via urllib.parse):
    scheme http(s)/ws(s), no control characters or spaces, a host, a port 1..65535."""
    if not value.startswith(("http://", "https://", "ws://", "wss://")):
        raise ConfigError(key, f"must be an http(s):// or ws(s):// URL, got {value!r}")
    bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise ConfigError(key, f"contains a control character (code {ord(bad)}): {value!r}")
    if any(c.isspace() for c in value):
        raise ConfigError(key, f"contains a space: {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as e:
        raise ConfigError(key, f"not a valid URL ({e}) (port must be 1..65535): {value!r}") from None
    if not parts.hostname:
        raise ConfigError(key, f"has no host: {value!r}")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(key, f"port must be 1..65535, got {port}: {value!r}")


def _address(key: str, value: str) -> None:
    if not _ADDRESS.match(value):
        raise ConfigError(key, f"not a 20-byte hex address: {value!r}")


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(key, f"must be one of {', '.join(allowed)}; got {value!r}")


def dump_toml(raw: dict[str, Any]) -> str:
    """Write a config dict as TOML (strings, numbers, bools, string lists, tables and arrays
    of tables): what ``edge demo`` and the tests hand to ``edge run``."""
    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        return "[" + ", ".join(val(x) for x in v) + "]"

    out: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and not (
            isinstance(v, list) and v and isinstance(v[0], dict))}
        out.append(f"[{prefix}]")
        out.extend(f"{k} = {val(v)}" for k, v in scalars.items())
        out.append("")
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}", v)
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                for item in v:
                    out.append(f"[[{prefix}.{k}]]")
                    out.extend(f"{kk} = {val(vv)}" for kk, vv in item.items())
                    out.append("")

    for name, section in raw.items():
        table(name, section)
    return "\n".join(out)
