"""``edge fleet``: the fleet as the chains show it (members, attestations, duty, anchors).

Reads only public state: the Attestations contract on the local chain (devices, quorum,
``Attested`` events) and the mainnet Anchor (``anchoredRoot``). No device is asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.contracts import anchor as anchor_abi
from edge.contracts import attestations as attest_abi
from edge.rpc import eth
from edge.rpc import open_rpc
from edge.config import Config
from edge.fleet.stage import duty_order

__all__ = ["CheckpointView", "FleetView", "fleet_view"]


@dataclass
class CheckpointView:
    """One attested checkpoint id: range, root, attesting devices, duty order, anchored?"""

    id: str
    from_block: int
    to_block: int
    root: str
    attested_by: list[str] = field(default_factory=list)
    duty_order: list[str] = field(default_factory=list)
    quorum_reached: bool = False
    anchored: bool = False


@dataclass
class FleetView:
    """Members, quorum and the newest attested checkpoints."""

    devices: list[str]
    quorum: int
    checkpoints: list[CheckpointView]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"devices": self.devices, "quorum": self.quorum,
                "checkpoints": [c.__dict__ for c in self.checkpoints]}


async def fleet_view(cfg: Config, *, last: int = 20) -> FleetView:
    """Build the :class:`FleetView` of the newest ``last`` checkpoint ids.

    Raises: ChainError when a chain cannot be read; ConfigError-free (``cfg`` was
    validated: ``[fleet]`` and ``[forward]`` must be enabled).
    """
    url = cfg.fleet.rpc_url or cfg.node.ws_url.replace("wss://", "https://").replace("ws://", "http://")
    att = bytes.fromhex(cfg.fleet.attestations[2:])
    anchor = bytes.fromhex(cfg.forward.mainnet.anchor[2:])
    async with open_rpc(url) as local, open_rpc(cfg.forward.mainnet.url) as main:
        devices = attest_abi.decode_devices(await eth.eth_call(local, att, attest_abi.DEVICES_CALL))
        quorum = attest_abi.decode_quorum(await eth.eth_call(local, att, attest_abi.QUORUM_CALL))
        by_id: dict[bytes, CheckpointView] = {}
        for lg in await eth.get_logs(local, att, [attest_abi.ATTESTED_TOPIC]):
            a = attest_abi.decode_attested(lg)
            c = a.checkpoint
            v = by_id.setdefault(c.id, CheckpointView("0x" + c.id.hex(), c.from_block, c.to_block, "0x" + c.root.hex()))
            if a.device in devices and a.device not in v.attested_by:
                v.attested_by.append(a.device)
        views = sorted(by_id.items(), key=lambda kv: (kv[1].from_block, kv[1].id))[-last:]
        for cid, v in views:
            v.quorum_reached = len(v.attested_by) >= quorum
            v.duty_order = duty_order(cid, devices)
            root = anchor_abi.decode_bytes32(await eth.eth_call(main, anchor, anchor_abi.anchored_root_call(cid)))
            v.anchored = root == bytes.fromhex(v.root[2:])
    return FleetView(devices, quorum, [v for _, v in views])
