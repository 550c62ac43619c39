"""Hardhat's node (npm ``hardhat`` 2.26.5, its EDR engine) on loopback: a second client
for the public tiers, so the tx sender is not tuned to one client's error strings.

:class:`HardhatChain` is a :class:`edge.devnet.anvil.DevChain` (same constructor, same
``http_url`` / ``ws_url`` / ``chain_id`` / :meth:`~HardhatChain.rpc` / :meth:`~HardhatChain.kill`
/ :meth:`~HardhatChain.start`), so everything that drives an anvil drives it too:
``edge demo --testnet-client hardhat``, :class:`edge.devnet.anvil.DevChains` with a
:class:`~edge.devnet.anvil.TierSpec` of ``client="hardhat"``, the tx sender's tests.

How it starts: a throwaway directory holds a one-line ``hardhat.config.js``
(``module.exports = { networks: { hardhat: {...} } }``: chain id, mining mode); Node.js
runs the pinned CLI (``node_modules/hardhat/internal/cli/cli.js``) from the project root
(Hardhat refuses an installation that is not local to its working directory) with
``--config`` pointing there, ``node --hostname 127.0.0.1 --port P``: HTTP and WebSocket
JSON-RPC on one loopback port. The process is started with ``PR_SET_PDEATHSIG`` in a
new session; :meth:`HardhatChain.stop` / :meth:`HardhatChain.kill` signal its whole
process group, so nothing outlives the test or the demo. Hardhat's telemetry prompt is
off (``HARDHAT_DISABLE_TELEMETRY_PROMPT``) and no consent is stored, so it sends nothing.

Control calls: Hardhat has ``evm_mine``, ``evm_snapshot``/``evm_revert``,
``evm_setAutomine``, ``evm_setIntervalMining`` and the ``hardhat_*`` twins of anvil's
``anvil_*`` cheats; :meth:`HardhatChain.rpc` maps the ``anvil_*`` names it has a twin for
(:data:`ANVIL_TO_HARDHAT`) and raises :class:`~edge.errors.DevChainError` for the others,
so a caller written for anvil runs unchanged where Hardhat can do the same.

Mining: ``block_time`` 0 = automine (one block per tx, like anvil without
``--block-time``); ``> 0`` = interval mining every ``block_time`` s (txs wait for the
next block, like ``anvil --block-time``); the anvil flag ``--no-mining`` (in
``extra_args``) = neither (blocks only on ``evm_mine`` / ``hardhat_mine``).

Differences from anvil seen here (Hardhat 2.26.5): default hardfork Prague, block gas
limit 30,000,000, the same 20 dev accounts of the "test ... junk" mnemonic (10,000 ETH
each); its error words differ (see :mod:`edge.forward.node_errors` and
``tests/data/node_errors.json``); a restart starts a fresh chain from genesis (as anvil).
Under automine the members of one JSON-RPC batch are handled concurrently, so a batch of
sends with consecutive nonces may be refused "Nonce too high ... can't be queued when
automining": drive batched activity with ``block_time > 0`` (interval mining queues).
Its ``debug_traceTransaction`` has only the default (struct log) tracer (-32602 for
``callTracer``) and it has no ``trace_block`` / ``debug_traceBlockByNumber``: an ingest
against it sees top-level deployments only (:mod:`edge.ingest.adapter` says so once).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

from edge.devnet.anvil import DevChain, TierSpec, free_port, rpc_call
from edge.devnet.process import kill_process, spawn, stop_process, wait_until_answers
from edge.errors import DevChainError

__all__ = ["ANVIL_TO_HARDHAT", "HardhatChain", "hardhat_cli", "hardhat_version"]

log = logging.getLogger("edge.devnet.hardhat")

_REPO = Path(__file__).resolve().parents[2]

ANVIL_TO_HARDHAT: Final[dict[str, str]] = {
    "anvil_mine": "hardhat_mine",
    "anvil_setBalance": "hardhat_setBalance",
    "anvil_setCode": "hardhat_setCode",
    "anvil_setNonce": "hardhat_setNonce",
    "anvil_setStorageAt": "hardhat_setStorageAt",
    "anvil_setNextBlockBaseFeePerGas": "hardhat_setNextBlockBaseFeePerGas",
    "anvil_setCoinbase": "hardhat_setCoinbase",
    "anvil_impersonateAccount": "hardhat_impersonateAccount",
    "anvil_stopImpersonatingAccount": "hardhat_stopImpersonatingAccount",
    "anvil_dropTransaction": "hardhat_dropTransaction",
    "anvil_setMinGasPrice": "hardhat_setMinGasPrice",
    "anvil_reset": "hardhat_reset",
    "anvil_setBlockGasLimit": "evm_setBlockGasLimit",
}
"""anvil control methods and their Hardhat twins (same parameters)."""


def hardhat_cli() -> str:
    """Path of Hardhat's CLI script (run with ``node``).

    Order: ``$EDGE_HARDHAT``; the pinned ``hardhat`` in the project's ``node_modules``
    (``make setup`` installs it). Raises DevChainError (with how to install) if none.
    """
    env = os.environ.get("EDGE_HARDHAT")
    if env:
        if not os.path.isfile(env):
            raise DevChainError(f"EDGE_HARDHAT={env} is not a file")
        return env
    cand = _REPO / "node_modules" / "hardhat" / "internal" / "cli" / "cli.js"
    if cand.is_file():
        return str(cand)
    raise DevChainError("hardhat not found: run `make setup` (installs the pinned hardhat into "
                        "node_modules/) or set EDGE_HARDHAT to its internal/cli/cli.js")


def hardhat_version(cli: str | None = None) -> str:
    """Version of the Hardhat package whose CLI is ``cli`` (default :func:`hardhat_cli`),
    read from its ``package.json``. Raises DevChainError if it cannot be read."""
    pkg = Path(cli or hardhat_cli()).resolve().parents[2] / "package.json"
    try:
        return str(json.loads(pkg.read_text())["version"])
    except (OSError, ValueError, KeyError) as e:
        raise DevChainError(f"cannot read the hardhat version from {pkg}: {e}") from e


@dataclass
class HardhatChain(DevChain):
    """One Hardhat node on loopback. An async context manager; see the module docstring.

    Args (as :class:`~edge.devnet.anvil.DevChain`):
        name: tier name (for logs). chain_id: the chain id it reports.
        block_time: seconds between blocks; 0 = automine.
        port: TCP port (0: pick a free one; kept across :meth:`kill` / :meth:`start`).
        extra_args: only ``"--no-mining"`` is understood (anvil's flag: blocks on demand).
        start_timeout: seconds Hardhat may take to answer ``eth_chainId`` (it loads
            for ~3-6 s on a busy 2-core machine).
        network: more keys for ``networks.hardhat`` of the config (e.g.
            ``{"blockGasLimit": 15_000_000}``), merged over the defaults.

    Attributes (after enter): ``http_url``, ``ws_url``, ``pid``; ``client`` is ``"hardhat"``.

    Raises (on enter):
        DevChainError: node/hardhat missing, an unknown extra arg, the process exited
            early or did not answer within ``start_timeout`` s (its log tail is in the message).
    """

    start_timeout: float = 60.0
    network: dict[str, Any] = field(default_factory=dict)
    client: ClassVar[str] = "hardhat"
    _dir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_spec(cls, spec: TierSpec, **kw: Any) -> HardhatChain:
        """A HardhatChain for a :class:`~edge.devnet.anvil.TierSpec` (keyword overrides allowed)."""
        return cls(spec.name, spec.chain_id, spec.block_time, extra_args=spec.extra_args, **kw)

    def _config(self) -> dict[str, Any]:
        net: dict[str, Any] = {"chainId": self.chain_id}
        unknown = [a for a in self.extra_args if a != "--no-mining"]
        if unknown:
            raise DevChainError(f"hardhat chain {self.name}: extra_args {unknown} have no Hardhat "
                                "equivalent (only --no-mining is understood)")
        if "--no-mining" in self.extra_args:
            net["mining"] = {"auto": False, "interval": 0}
        elif self.block_time > 0:
            net["mining"] = {"auto": False, "interval": max(1, round(self.block_time * 1000))}
        net.update(self.network)
        return net

    @property
    def _log_path(self) -> Path | None:
        return Path(self._dir.name) / "node.log" if self._dir is not None else None

    def log_tail(self, chars: int = 1500) -> str:
        """The last ``chars`` characters of the node's output (for error messages)."""
        p = self._log_path
        try:
            return p.read_text(errors="replace")[-chars:].strip() if p else ""
        except OSError:
            return ""

    async def start(self) -> None:
        """Write the config, start Hardhat and wait until it answers. Idempotent while running."""
        if self._proc is not None and self._proc.poll() is None:
            return
        node_bin = shutil.which("node")
        if node_bin is None:
            raise DevChainError("node (Node.js) is not on PATH: Hardhat needs it")
        cli = hardhat_cli()
        if self.port == 0:
            self.port = free_port()
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix=f"edge-hardhat-{self.name}-")
        cfg = Path(self._dir.name) / "hardhat.config.js"
        cfg.write_text(f"module.exports = {{ networks: {{ hardhat: {json.dumps(self._config())} }} }};\n")
        args = [node_bin, cli, "--config", str(cfg), "node", "--hostname", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "FORCE_COLOR": "0"}
        log.debug("starting %s: %s", self.name, " ".join(args))
        assert self._log_path is not None
        with open(self._log_path, "ab") as out:
            # from the loop's thread: PR_SET_PDEATHSIG is tied to the forking thread
            self._proc = proc = spawn(args, f"hardhat for {self.name}", stdout=out, cwd=_REPO, env=env,
                                      new_session=True)
        state = await wait_until_answers(self.chain_id, lambda: rpc_call(self.http_url, "eth_chainId", timeout=1.0),
                                         lambda: proc.poll() is None, timeout_s=self.start_timeout, poll_s=0.1)
        if state == "exited":
            self._proc = None
            raise DevChainError(f"hardhat for {self.name} exited at start: {self.log_tail()}")
        if state == "timeout":
            tail = self.log_tail()
            await self.stop()
            raise DevChainError(f"hardhat for {self.name} not answering on {self.http_url} "
                                f"after {self.start_timeout:.0f} s: {tail}")
        log.info("dev chain %s (hardhat) up: chain id %d on %s", self.name, self.chain_id, self.ws_url)

    async def stop(self) -> None:
        """Stop Hardhat (SIGTERM to its process group, SIGKILL after 3 s) and remove its
        config directory. Idempotent."""
        proc = self._proc
        if proc is not None:
            await stop_process(proc, group=True)
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def kill(self) -> None:
        """SIGKILL Hardhat's process group at once (a node dying); :meth:`start` brings a
        fresh chain back on the same port."""
        proc = self._proc
        if proc is not None:
            await kill_process(proc, group=True)
            self._proc = None

    async def rpc(self, method: str, *params: Any) -> Any:
        """A JSON-RPC control call over HTTP; ``anvil_*`` names with a Hardhat twin are
        mapped (:data:`ANVIL_TO_HARDHAT`). Raises DevChainError on failure or for an
        ``anvil_*`` method Hardhat has no twin of."""
        if method.startswith("anvil_"):
            if method not in ANVIL_TO_HARDHAT:
                raise DevChainError(f"hardhat chain {self.name}: no Hardhat equivalent of {method}")
            method = ANVIL_TO_HARDHAT[method]
        return await rpc_call(self.http_url, method, params)
