"""The EIP-1559 fee policy of the tx sender (wei per gas throughout).

- market: ``base`` = the next block's base fee (last entry of ``eth_feeHistory``'s
  ``baseFeePerGas``), ``prio`` = ``eth_maxPriorityFeePerGas`` or, where a node does not
  serve it, the median 50th-percentile reward of the last 5 blocks (``eth_feeHistory``).
- a new tx: ``max_fee = min(2 * base + prio, cap)`` (two full base-fee rises of headroom,
  as wallets do), ``prio = min(prio, max_fee)``; it waits while ``base + prio > cap``.
- a replacement (same nonce): both fees raised by ``bump_percent`` over the previous
  attempt, or to the market if higher, never above ``cap`` (geth's price-bump rule
  wants >= 10 %).

Spec: EIP-1559; JSON-RPC ``eth_feeHistory``, ``eth_maxPriorityFeePerGas``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge.errors import RpcError, RpcProtocolError
from edge.rpc import codec
from edge.rpc.base import JsonRpc

__all__ = ["Fees", "market_fees", "new_tx_fees", "bumped_fees"]


@dataclass(frozen=True, slots=True)
class Fees:
    """Market fees: ``base`` (next block's base fee) and ``prio`` (tip), wei/gas."""

    base: int
    prio: int


async def market_fees(rpc: JsonRpc) -> Fees:
    """The market's fees now (see the module doc).

    Raises: RpcProtocolError (no ``baseFeePerGas``: not an EIP-1559 chain), ChainError.
    """
    hist = await rpc.call("eth_feeHistory", [hex(5), "latest", [50]])
    if not isinstance(hist, dict) or not hist.get("baseFeePerGas"):
        raise RpcProtocolError("eth_feeHistory", "no baseFeePerGas (not an EIP-1559 chain?)")
    base = codec.quantity(hist["baseFeePerGas"][-1], "eth_feeHistory", "result.baseFeePerGas[-1]")
    try:
        prio = codec.quantity(await rpc.call("eth_maxPriorityFeePerGas"), "eth_maxPriorityFeePerGas", "result")
    except RpcError:  # not served (older node): median reward of recent blocks
        rewards = sorted(codec.quantity(r[0], "eth_feeHistory", "result.reward")
                         for r in hist.get("reward") or [] if r)
        prio = rewards[len(rewards) // 2] if rewards else 10**9
    return Fees(base=base, prio=max(prio, 1))


def new_tx_fees(market: Fees, cap: int) -> tuple[int, int] | None:
    """``(max_fee, prio)`` for a new tx, or None while ``base + prio`` exceeds ``cap``."""
    if market.base + market.prio > cap:
        return None
    max_fee = min(2 * market.base + market.prio, cap)
    return max_fee, min(market.prio, max_fee)


def bumped_fees(last_max: int, last_prio: int, market: Fees, bump_percent: float, cap: int) -> tuple[int, int] | None:
    """``(max_fee, prio)`` of a replacement of an attempt signed with ``last_max`` /
    ``last_prio``, or None when the required bump would exceed ``cap``."""
    factor = 1.0 + bump_percent / 100.0
    min_max = math.ceil(last_max * factor)
    min_prio = math.ceil(last_prio * factor)
    prio = max(min_prio, market.prio)
    max_fee = min(max(min_max, 2 * market.base + prio), cap)
    if max_fee < min_max or prio > max_fee:
        return None
    return max_fee, prio
