"""The ``edge`` command line.

Subcommands: ``run`` (the agent), ``status`` (what the outbox holds), ``demo`` (the
main job on embedded local chains), ``score`` and ``bench`` (the risk model). Every
:class:`edge.errors.EdgeError` ends the command with one clear line on stderr and exit
status 2; Ctrl-C / SIGTERM stop the agent cleanly (exit 0: the outbox is consistent at
every instant, so there is nothing to flush).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from edge import __version__
from edge.cli import bench as bench_cmd
from edge.cli import score as score_cmd
from edge.errors import ConfigError, EdgeError, UsageError

__all__ = ["main", "build_parser", "run_async"]

T = TypeVar("T")
log = logging.getLogger("edge")


def setup_logging(level: str = "info") -> None:
    """One line per event on stderr (systemd's journal adds its own timestamps)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop (asyncio's default loop where uvloop is missing), with
    SIGTERM mapped to cancellation so ``systemctl stop`` ends the agent cleanly."""

    async def _main() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, task.cancel)
                except (NotImplementedError, RuntimeError):  # pragma: no cover
                    pass
        return await factory()

    try:
        import uvloop

        return uvloop.run(_main())
    except ImportError:  # pragma: no cover - uvloop is a hard dependency
        return asyncio.run(_main())


# -- run ------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from edge import memory

    memory.limit_arenas()  # before any thread starts (MALLOC_ARENA_MAX, when set, wins)
    from edge.appliance.runner import load_config_or_fault, run_appliance
    from edge.agent import Agent

    cfg = load_config_or_fault(args.config)
    setup_logging(cfg.log.level)
    if args.init:
        _init_outbox(cfg.resolve(cfg.outbox.path))
    log.info("edge %s starting: node %s, outbox %s", __version__, cfg.node.ws_url, cfg.resolve(cfg.outbox.path))

    async def go() -> None:
        async with Agent(cfg, score=not args.no_score) as agent:
            try:
                await run_appliance(agent, stop_at=args.stop_at)
            finally:
                log.info("stopping: %s", agent.stats_line())

    try:
        run_async(go)
    except asyncio.CancelledError:
        pass
    return 0


# -- status ---------------------------------------------------------------------------


def _cmd_status(args: argparse.Namespace) -> int:
    from edge.config import load_config

    cfg = load_config(args.config)
    info = run_async(lambda: status_info(cfg.resolve(cfg.outbox.path), cfg.node.chain_id or None))
    if args.json:
        print(json.dumps(info, sort_keys=True))
    else:
        print(f"edge {__version__}  outbox {info['outbox']} ({info['outbox_mb']} MiB)")
        print(f"chain {info['chain_id']}: head {info['head']}  cursor {info['cursor']}  lag {info['lag']}")
        print(f"records: {info['blocks']} blocks ({info['confirmed_blocks']} confirmed), {info['contracts']} contracts "
              f"({info['codes']} distinct codes), {info['logs']} logs")
        print(f"risk: {info['scored']} codes scored, {info['flagged']} high-risk")
        caps = info["capabilities"]
        done = sum(caps["by_status"].values())
        timeouts = caps["by_status"].get("timeout", 0)
        flags = ", ".join(f"{f} {n}" for f, n in sorted(caps["by_flag"].items(), key=lambda kv: (-kv[1], kv[0])))
        print(f"capabilities: {done} codes analysed ({timeouts} timed out); codes per flag: {flags or 'none'}")
        cp = info["checkpoints"]
        print("checkpoints: " + (", ".join(f"{n} {s}" for s, n in sorted(cp.items())) or "none yet")
              + f"; last anchored: {info['last_anchored'] or '-'}")
        print("transactions: " + (", ".join(f"{n} {s}" for s, n in sorted(info["txs"].items())) or "none"))
        print(f"alarms: {info['alarms']}" + (f"; newest: {info['last_alarm']}" if info["last_alarm"] else ""))
        if info.get("clique_signers"):
            cs = info["clique_signers"]
            print(f"clique signers at block {cs['block']} ({len(cs['signers'])}): {', '.join(cs['signers'])}")
    return 0


async def status_info(path: Path, chain_id: int | None) -> dict[str, Any]:
    """What ``edge status`` shows (see :func:`edge.store.status.status_info`)."""
    from edge.store.status import status_info as read_status

    return await read_status(path, chain_id)


# -- demo -----------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from edge.devnet.demo import DemoOptions, run_demo

    setup_logging("warning" if not args.verbose else "info")
    if args.devices > 1 or args.quorum > 1:
        if args.local != "anvil":
            raise UsageError("--local", f"{args.local} is not available with a fleet (--devices/--quorum): anvil only")
        return _fleet_demo(args)
    opts = DemoOptions(
        seconds=args.seconds,
        corpus=Path(args.corpus) if args.corpus else None,
        workdir=Path(args.workdir) if args.workdir else None,
        json_out=args.json,
        score=not args.no_score,
        testnet_client=args.testnet_client,
        local=args.local,
    )
    result = run_async(lambda: run_demo(opts))
    return 0 if result.get("ok") else 1


def _fleet_demo(args: argparse.Namespace) -> int:
    import tempfile

    from edge.devnet.demo import bytecodes
    from edge.devnet.demo_fleet import run_fleet_demo

    if not 1 <= args.quorum <= args.devices:
        raise UsageError("--quorum", f"must be 1..--devices ({args.devices}), got {args.quorum}")
    if not 1 <= args.batch <= 256:
        raise UsageError("--batch", f"must be 1..256, got {args.batch}")

    def go(workdir: Path) -> int:
        res = run_async(lambda: run_fleet_demo(
            devices=args.devices, quorum=args.quorum, seconds=args.seconds, workdir=workdir, json_out=args.json,
            codes=bytecodes(Path(args.corpus) if args.corpus else None), score=not args.no_score, batch=args.batch,
            testnet_client=args.testnet_client))
        return 0 if res["ok"] else 1

    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        return go(Path(args.workdir))
    with tempfile.TemporaryDirectory(prefix="edge-fleet-") as tmp:
        return go(Path(tmp))


def _cmd_fleet(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.fleet.view import fleet_view

    cfg = load_config(args.config)
    if not cfg.fleet.enabled:
        raise ConfigError("fleet.enabled", "this device is not configured as part of a fleet")
    view = run_async(lambda: fleet_view(cfg, last=args.last))
    if args.json:
        print(json.dumps(view.as_json(), sort_keys=True))
        return 0
    print(f"devices ({len(view.devices)}, quorum {view.quorum}): " + ", ".join(view.devices))
    for c in view.checkpoints:
        state = "anchored" if c.anchored else ("quorum" if c.quorum_reached else "waiting")
        print(f"  {c.id[:18]}.. blocks {c.from_block}..{c.to_block}  {len(c.attested_by)}/{view.quorum} attestations"
              f"  {state:8}  duty: {c.duty_order[0]}")
    return 0


# -- verify / sync-now / keys ----------------------------------------------------------


def _cmd_verify(args: argparse.Namespace) -> int:
    from edge.audit.verify import Auditor, TestnetRef, parse_record_key, print_verdicts

    mainnet, anchor, testnets = args.mainnet, args.anchor, []
    local_poa: dict[str, Any] | None = None
    local_verify = args.local_verify
    if args.config:
        from edge.config import load_config

        loaded = load_config(args.config)
        f = loaded.forward
        local_poa = {"engine": loaded.poa.engine, "period_s": loaded.poa.period_s, "epoch": loaded.poa.epoch}
        local_verify = local_verify or loaded.ingest.verify
        mainnet = mainnet or f.mainnet.url
        anchor = anchor or f.mainnet.anchor
        testnets = [TestnetRef(t.url, t.chain_id, bytes.fromhex(t.store[2:])) for t in f.testnets]
    for spec in args.testnet or []:
        try:
            url, cid, store = spec.rsplit(",", 2)
            testnets.append(TestnetRef(url, int(cid), bytes.fromhex(store.removeprefix("0x"))))
        except ValueError:
            raise UsageError("--testnet", f"expected URL,CHAIN_ID,STORE_ADDRESS, got {spec!r}") from None
    if not (mainnet and anchor and testnets):
        raise UsageError("verify", "needs --mainnet, --anchor and --testnet (or --config with a [forward] section)")
    try:
        key = bytes.fromhex(Path(args.auditor_key).read_text().strip().removeprefix("0x"))
    except (OSError, ValueError) as e:
        raise UsageError("--auditor-key", f"cannot read a hex private key from {args.auditor_key}: {e}") from e
    auditor = Auditor(mainnet, bytes.fromhex(anchor.removeprefix("0x")), testnets, key, local_ws=args.local,
                      local_poa=local_poa, local_verify=local_verify or "strict")

    async def go() -> int:
        async with auditor:
            if args.record:
                res = await auditor.prove_record(parse_record_key(args.record))
                print(json.dumps(res, sort_keys=True))
                return 0 if res["ok"] else 1
            summary = print_verdicts(await auditor.verify_all(), args.json)
            return 0 if summary["verify_fail"] == 0 else 1

    return run_async(go)


def _cmd_sync_now(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.checkpoint.stage import request_sync
    from edge.store.db import Outbox

    cfg = load_config(args.config)

    async def go() -> int:
        async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
            return await request_sync(ob)

    rid = run_async(go)
    print(f"checkpoint requested (request {rid}); the running agent cuts it up to the newest confirmed block")
    return 0


def _cmd_keys_new(args: argparse.Namespace) -> int:
    from edge.errors import CryptoError
    from edge.crypto.keys import (
        DEFAULT_SCRYPT_N,
        check_passphrase_strength,
        create_keystore,
        generate_passphrase,
        read_passphrase,
        write_passphrase_file,
    )

    if Path(args.keystore).exists():
        raise CryptoError(f"keystore {args.keystore}: already exists, refusing to overwrite")
    if args.generate:
        kind, _, where = args.passphrase.partition(":")
        if kind != "file" or not where:
            raise UsageError("--passphrase", "with --generate it must be file:PATH (where the new passphrase goes)")
        write_passphrase_file(where, generate_passphrase())
    passphrase = read_passphrase(args.passphrase)
    try:
        check_passphrase_strength(passphrase)
    except CryptoError as e:
        raise CryptoError(f"{e}; choose a longer, less guessable one, or let `edge keys new --generate "
                          "--passphrase file:PATH` write a random one") from None
    address = create_keystore(args.keystore, passphrase, work_factor=args.work_factor or DEFAULT_SCRYPT_N)
    print(address)
    return 0


# -- init -----------------------------------------------------------------------------


def _init_outbox(path: Path) -> None:
    """Make ``path`` an outbox even if it is a 0-byte file or holds foreign tables."""
    from edge.store.db import Outbox

    async def go() -> None:
        async with Outbox(path, init=True):
            pass

    run_async(go)


def _cmd_init(args: argparse.Namespace) -> int:
    from edge.config import load_config

    cfg = load_config(args.config)
    path = cfg.resolve(cfg.outbox.path)
    _init_outbox(path)
    print(f"outbox {path} ready")
    return 0


# -- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``edge`` (subcommands and their options)."""
    p = argparse.ArgumentParser(prog="edge", description="Edge gateway for a private PoA chain.")
    p.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the agent with a TOML config")
    r.add_argument("--config", required=True, help="TOML config file")
    r.add_argument("--stop-at", type=int, default=None, metavar="BLOCK",
                   help="exit once every block up to BLOCK is in the outbox (backfill jobs, tests)")
    r.add_argument("--no-score", action="store_true", help="do not run the scoring stage")
    r.add_argument("--init", action="store_true",
                   help="accept an empty (0-byte) or foreign outbox file and make it an outbox")
    r.set_defaults(func=_cmd_run)

    i = sub.add_parser("init", help="create the outbox (also over an empty or foreign file) and exit")
    i.add_argument("--config", required=True, help="TOML config file")
    i.set_defaults(func=_cmd_init)

    s = sub.add_parser("status", help="show head, cursor, lag and record counts from the outbox")
    s.add_argument("--config", required=True, help="TOML config file")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=_cmd_status)

    d = sub.add_parser("demo", help="start local anvil chains, drive real activity, run the agent")
    d.add_argument("--seconds", type=float, default=60.0, help="how long to drive activity (s)")
    d.add_argument("--corpus", default=None, help="jsonl.gz corpus of runtime bytecode to deploy")
    d.add_argument("--workdir", default=None, help="keep the outbox and config here")
    d.add_argument("--json", action="store_true", help="final line is one JSON object (always printed)")
    d.add_argument("--no-score", action="store_true", help="do not run the scoring stage")
    d.add_argument("-v", "--verbose", action="store_true", help="agent log lines too")
    d.add_argument("--devices", type=int, default=1, help="N agents as separate processes (a fleet)")
    d.add_argument("--quorum", type=int, default=1, help="M signatures an anchor needs (fleet)")
    d.add_argument("--batch", type=int, default=1, help="K checkpoints per mainnet anchor (fleet)")
    d.add_argument("--testnet-client", choices=("anvil", "hardhat"), default="anvil",
                   help="client of the first testnet (testnet-a): anvil or Hardhat's node (EDR)")
    d.add_argument("--local", choices=("anvil", "clique"), default="anvil",
                   help="the local PoA tier: anvil, or two EthereumJS Clique sealers in a network "
                        "namespace (needs root; empty blocks only: that client drops transactions)")
    d.set_defaults(func=_cmd_demo)

    v = sub.add_parser("verify", help="auditor: check every anchored checkpoint (mainnet -> testnets)")
    v.add_argument("--config", help="take mainnet, anchor and testnets from this agent config")
    v.add_argument("--mainnet", help="mainnet HTTP JSON-RPC URL")
    v.add_argument("--anchor", help="Anchor contract address")
    v.add_argument("--testnet", action="append", metavar="URL,CHAIN_ID,STORE", help="a testnet (repeat)")
    v.add_argument("--auditor-key", required=True, help="file holding the auditor's hex private key")
    v.add_argument("--local", metavar="WS_URL", help="private chain endpoint: re-read and compare every record")
    v.add_argument("--local-verify", choices=("strict", "receipts", "headers", "off"),
                   help="what the re-read of --local checks (ingest.verify; default: the --config's, else strict)")
    v.add_argument("--record", metavar="BLOCK:KIND:TX:INDEX", help="prove one record (needs --local)")
    v.add_argument("--json", action="store_true", help="one JSON object per checkpoint, then a summary")
    v.set_defaults(func=_cmd_verify)

    fl = sub.add_parser("fleet", help="members, attestations per checkpoint, duty holder, anchors")
    fl.add_argument("--config", required=True, help="TOML config file of a fleet device")
    fl.add_argument("--last", type=int, default=20, help="how many recent checkpoints")
    fl.add_argument("--json", action="store_true", help="one JSON object")
    fl.set_defaults(func=_cmd_fleet)

    n = sub.add_parser("sync-now", help="ask the running agent for a checkpoint now")
    n.add_argument("--config", required=True, help="TOML config file")
    n.set_defaults(func=_cmd_sync_now)

    k = sub.add_parser("keys", help="device keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kn = ksub.add_parser("new", help="create an encrypted keystore (eth-account v3) and print its address")
    kn.add_argument("--keystore", required=True, help="keystore file to create (never overwritten)")
    kn.add_argument("--passphrase", required=True, metavar="SPEC", help="file:PATH, env:NAME or credential:NAME")
    kn.add_argument("--generate", action="store_true",
                    help="write a random passphrase to the (new) file:PATH first, and use it")
    kn.add_argument("--work-factor", type=int, default=None, metavar="N",
                    help="scrypt cost n (a power of two; default 2**18, 256 MiB)")
    kn.set_defaults(func=_cmd_keys_new)

    score_cmd.register(sub)
    bench_cmd.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edge`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        setup_logging("info")
    try:
        rc: int = args.func(args)
        return rc
    except ConfigError as e:
        print(f"edge: {e}", file=sys.stderr)
        return 2
    except EdgeError as e:
        print(f"edge: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
