"""Reading ``Anchored`` logs of the mainnet Anchor with everything an auditor needs.

The log itself is lean (id, span, locator, signer bitmap: see :mod:`edge.contracts.anchor`);
this module fills in, per event:

- ``root``: ``anchoredRoot(id)`` (stored once, never changed, so read at ``latest``);
- ``signers``: the signer bitmap resolved against the roster in force at the log (the
  last ``DevicesChanged`` log before it, :func:`edge.contracts.anchor.roster_at`);
- ``submitter``: the ``from`` of the anchoring transaction.

``last_block_hash`` stays None: it is in the checkpoint's metadata, and the id commits
to it (the auditor recomputes the id from the metadata's fields).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eth_utils.address import to_checksum_address

from edge.contracts.anchor import (
    ANCHORED_TOPIC,
    DEVICES_CHANGED_TOPIC,
    AnchoredEvent,
    anchored_root_call,
    decode_anchored,
    decode_bytes32,
    decode_devices_changed,
    roster_at,
)
from edge.errors import RpcProtocolError
from edge.rpc import eth
from edge.rpc.base import JsonRpc

__all__ = ["fetch_anchored"]


async def fetch_anchored(rpc: JsonRpc, anchor: bytes, *, from_block: int = 0) -> list[AnchoredEvent]:
    """Every ``Anchored`` event of the contract at ``anchor`` (20 bytes), oldest first, with
    ``root``, ``signers`` and ``submitter`` filled in (module doc).

    Costs 2 ``eth_getLogs`` plus 2 requests per event (``eth_call``, transaction lookup).

    Raises:
        RpcProtocolError: a malformed log or answer, a log without its position, or an
            anchor with no device set registered before it (impossible on a real Anchor).
        NodeUnavailable, RpcError: from the transport.
    """
    logs = await eth.get_logs(rpc, anchor, [ANCHORED_TOPIC], from_block)
    if not logs:
        return []
    changes = [decode_devices_changed(lg) for lg in await eth.get_logs(rpc, anchor, [DEVICES_CHANGED_TOPIC])]
    out: list[AnchoredEvent] = []
    for lg in logs:
        bare = decode_anchored(lg)
        if bare.block_number is None or bare.log_index is None or bare.transaction_hash is None:
            raise RpcProtocolError("eth_getLogs", "Anchored log without blockNumber/logIndex/transactionHash")
        ev = decode_anchored(lg, roster_at(changes, bare.block_number, bare.log_index))
        root = decode_bytes32(await eth.eth_call(rpc, anchor, anchored_root_call(ev.id)))
        tx = await rpc.call("eth_getTransactionByHash", ["0x" + bare.transaction_hash.hex()])
        if not isinstance(tx, dict) or not isinstance(tx.get("from"), str):
            raise RpcProtocolError("eth_getTransactionByHash", f"no sender for anchor tx 0x{bare.transaction_hash.hex()}")
        out.append(replace(ev, root=root, submitter=str(to_checksum_address(tx["from"]))))
    out.sort(key=lambda e: (e.block_number or 0, e.log_index or 0))
    return out
