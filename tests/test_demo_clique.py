"""``edge demo --local clique``: the local tier on real EthereumJS Clique sealers in a
network namespace, the agent and the auditor in the host namespace reaching it through
:meth:`edge.devnet.netns.NetNamespace.forward`; and that relay on its own, against an echo
server listening inside a namespace.

Needs root (network namespaces), iproute2 and, for the demo, the npm packages (``make
setup``); skipped otherwise, with the reason. The sealers run with ``--discDns false
--discV4 false --dnsAddr 127.0.0.1 --extIP 127.0.0.1`` inside the namespace (checked
below on the launcher's command line), so nothing can leave loopback.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from edge.devnet import demo_clique
from edge.devnet.demo import DemoOptions, run_demo
from edge.devnet.demo_clique import ACTIVITY, CLIENT, ethereumjs_version
from edge.devnet.ethereumjs import ethereumjs_cli
from edge.devnet.netns import NetNamespace, netns_available
from edge.errors import DevChainError


def _skip_reason(need_client: bool) -> str | None:
    why = netns_available()
    if why or not need_client:
        return why
    try:
        ethereumjs_cli()
    except DevChainError as e:
        return str(e)
    return None


def _listener_inside(ns: NetNamespace) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (a free port) of the namespace ``ns``."""
    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen()
        s.setblocking(False)
        return s
    return ns.run_inside(make)


async def test_forward_relays_each_connection_both_ways_and_leaves_nothing_behind() -> None:
    reason = _skip_reason(need_client=False)
    if reason:
        pytest.skip(reason)
    ended: asyncio.Queue[int] = asyncio.Queue()

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        n = 0
        try:
            while data := await r.read(65536):
                n += len(data)
                w.write(data)
                await w.drain()
        except ConnectionError:
            pass
        finally:
            w.close()
            ended.put_nowait(n)  # the bytes it saw before its client went away

    async def close_at_once(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    async def next_ended() -> int:
        async with asyncio.timeout(10):
            return await ended.get()

    async with NetNamespace(f"edge-fwd-{os.getpid()}") as ns:
        echo_sock, closer_sock = _listener_inside(ns), _listener_inside(ns)
        echo_port, closer_port = echo_sock.getsockname()[1], closer_sock.getsockname()[1]
        gone = _listener_inside(ns)  # a port where nothing listens inside any more
        gone_port = gone.getsockname()[1]
        gone.close()
        echo_srv = await asyncio.start_server(echo, sock=echo_sock)
        closer_srv = await asyncio.start_server(close_at_once, sock=closer_sock)
        async with echo_srv, closer_srv:
            async with ns.forward(echo_port) as port, ns.forward(closer_port) as port_closer, \
                    ns.forward(gone_port) as port_gone:
                assert len({port, port_closer, port_gone}) == 3

                async def round_trip(payload: bytes) -> bytes:
                    r, w = await asyncio.open_connection("127.0.0.1", port)
                    w.write(payload)
                    await w.drain()
                    got = await r.readexactly(len(payload))
                    w.close()
                    await w.wait_closed()
                    return got

                big = os.urandom(3 * 2**20)  # more than the socket buffers: drain() works both ways
                small = b'{"method":"eth_chainId"}'
                assert list(await asyncio.gather(round_trip(big), round_trip(small))) == [big, small]
                # the client's close reached the inside server as EOF, after all its bytes
                assert sorted([await next_ended(), await next_ended()]) == sorted([len(small), len(big)])
                # a connection kept open carries request after request, as a WebSocket does
                r, w = await asyncio.open_connection("127.0.0.1", port)
                for i in range(3):
                    msg = f"request {i}".encode()
                    w.write(msg)
                    await w.drain()
                    assert await r.readexactly(len(msg)) == msg
                # the inside server closing reaches the host client as EOF
                r2, w2 = await asyncio.open_connection("127.0.0.1", port_closer)
                assert await r2.read() == b""
                w2.close()
                # nothing listening inside: the host client sees the connection closed
                r3, w3 = await asyncio.open_connection("127.0.0.1", port_gone)
                assert await r3.read() == b""
                w3.close()
            # on exit the open connection was cut on both sides, no relay task is left, the port is closed
            assert await r.read() == b""
            w.close()
            assert await next_ended() == len(b"request 0") * 3
            assert [t for t in asyncio.all_tasks() if "-relay-" in t.get_name()] == []
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", port)


async def test_without_network_namespaces_the_demo_fails_naming_why(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Not root (or no iproute2): the demo refuses before it starts anything, saying why."""
    monkeypatch.setattr(demo_clique, "netns_available", lambda: "network namespaces need root")
    with pytest.raises(DevChainError, match=r"--local clique runs the EthereumJS sealers in a network namespace.*"
                                            r"cannot be made here: network namespaces need root"):
        await run_demo(DemoOptions(seconds=1, workdir=tmp_path, json_out=True, local="clique"))
    assert not (tmp_path / "clique").exists() and _nodes_left() == []


def _descendants(pid: int) -> list[tuple[int, str]]:
    """``(pid, cmdline)`` of every living descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    cmd: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append((p, cmd.get(p, "")))
        todo += children.get(p, [])
    return out


def _nodes_left() -> list[tuple[int, str]]:
    """Children of this process that are nodes (anvil, EthereumJS or Hardhat on Node.js)."""
    return [(p, c) for p, c in _descendants(os.getpid()) if any(n in c for n in ("anvil", "ethereumjs", "node"))]


def _mentioning(text: str) -> list[tuple[int, str]]:
    """Every living process whose command line contains ``text`` (an orphan included)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                c = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in c:
                found.append((int(entry), c))
    return found


@pytest.mark.slow
async def test_demo_local_clique_anchors_and_verifies_and_leaves_no_process(tmp_path: Path) -> None:
    reason = _skip_reason(need_client=True)
    if reason:
        pytest.skip(reason)
    opts = DemoOptions(seconds=10, workdir=tmp_path, json_out=True, score=False, local="clique",
                       min_anchored=2, drain_timeout=60)
    result = await run_demo(opts)
    local = result["local"]
    # the local tier was EthereumJS, and the JSON says so for each tier
    assert result["clients"] == {"poa": CLIENT, "testnet-a": "anvil", "testnet-b": "anvil", "mainnet": "anvil"}
    assert local["client"] == f"{CLIENT} {ethereumjs_version()}" and local["client"].startswith("ethereumjs 0.10.")
    assert (local["sealers"], local["activity"]) == (2, ACTIVITY)
    # blocks from the genesis were ingested, every seal recovered and authorized, both sealers sealing
    seals = local["seals"]
    assert result["blocks"] > 10 and seals["sealed"] == result["blocks"] - 1, result
    assert seals["seal_ok"] == seals["sealed"] and seals["strangers"] == 0 and seals["alarms"] == 0, seals
    assert set(seals["by_signer"]) == set(local["signers"]), seals
    assert (result["contracts"], result["logs"]) == (0, 0)  # blocks only: nothing else was there
    # checkpoints were anchored, and the auditor verified each one through the relay
    assert result["checkpoints_anchored"] >= 2 and result["verify_ok"] == result["checkpoints_anchored"]
    assert result["verify_fail"] == 0 and result["ok"], result
    # no node is left: no child of this process, no EthereumJS process using the workdir
    assert _nodes_left() == [] and _mentioning(str(tmp_path / "clique")) == []
    assert not Path(f"/run/netns/edge-ejs-{os.getpid()}").exists()


def test_the_sealers_command_line_keeps_discovery_on_loopback(tmp_path: Path) -> None:
    """Every sealer the demo starts is told not to use public DNS or discovery."""
    import shutil

    from eth_keys.datatypes import PrivateKey

    from edge.devnet.ethereumjs import EthereumJSNet

    try:
        ethereumjs_cli()
    except DevChainError as e:
        pytest.skip(str(e))
    if shutil.which("node") is None:
        pytest.skip("node (Node.js) is not on PATH")
    net = EthereumJSNet(tmp_path, [PrivateKey(bytes([i + 1]) * 32) for i in range(2)])
    for node in net.nodes:
        argv = net._args(node, [])
        pairs = dict(zip(argv, argv[1:]))
        assert pairs["--discDns"] == "false" and pairs["--discV4"] == "false"
        assert pairs["--dnsAddr"] == pairs["--extIP"] == pairs["--rpcAddr"] == pairs["--wsAddr"] == "127.0.0.1"
