"""Can this node prove state? One ``eth_getProof`` at start, checked, said once.

Verified ingest (:mod:`edge.chain.verify`) proves every runtime code with an EIP-1186
account proof at the block it was read at. Nodes differ: some have no ``eth_getProof``
(JSON-RPC -32601), full nodes prune old state (geth keeps about 128 blocks; anvil with
``--prune-history`` answers ``BlockOutOfRangeError``), and a faulty node may serve proofs
that do not verify. :func:`probe_proofs` tells which, for the oldest block ingest will
need, so the agent can say it once and act on ``ingest.verify`` (an error in "strict",
a warning and header/receipt checks only otherwise).

The I/O is injected (``call(method, params) -> result``, e.g. ``WsRpc.call``), so the
probe works over any transport.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edge.rpc import codec
from edge.chain.verify import VerificationError, verify_account
from edge.errors import MethodNotSupported, RpcError

__all__ = ["Call", "ProofSupport", "probe_proofs"]

_INVALID_PARAMS = -32602

Call = Callable[[str, Sequence[Any]], Awaitable[Any]]
"""``await call(method, params)`` returns the JSON-RPC result or raises ChainError."""


@dataclass(frozen=True, slots=True)
class ProofSupport:
    """The probe's verdict.

    Attributes:
        status: ``"ok"`` (a proof came and verified), ``"unsupported"`` (no
            ``eth_getProof``), ``"unavailable"`` (the node has no state for that block:
            pruned, out of range), ``"invalid"`` (a proof came that does not verify).
        block: the block number probed.
        reason: one line for the log, naming the node's answer.
        by_number: the node names blocks by number only: it refuses an EIP-1898
            ``{"blockHash": ...}`` argument as invalid params (-32602; EthereumJS 0.10.5:
            "argument must be a string") but proves state at a block number. The proof
            is still checked against the stateRoot of the header read by hash, so a
            block replaced in between fails verification instead of passing.
    """

    status: Literal["ok", "unsupported", "unavailable", "invalid"]
    block: int
    reason: str
    by_number: bool = False

    @property
    def available(self) -> bool:
        """True when code can be proven at that block."""
        return self.status == "ok"


async def probe_proofs(call: Call, header: Mapping[str, Any]) -> ProofSupport:
    """Ask for and verify the account proof of ``header``'s ``miner`` at that block.

    Args:
        call: the JSON-RPC call function.
        header: a verified ``eth_getBlockByNumber`` result (see
            :func:`edge.chain.verify.verify_header`); the block is named by hash
            (EIP-1898).

    Returns: a :class:`ProofSupport`; it never raises for what the node answers. A
    node that refuses the EIP-1898 block-hash argument as invalid params (-32602) is
    asked again by block number (``by_number``).

    Raises: NodeUnavailable (the node could not be reached: a transient fault, probe again).
    """
    m = "eth_getBlockByNumber"
    n = codec.quantity(codec.field(header, "number", m, "result"), m, "result.number")
    miner = codec.address(codec.field(header, "miner", m, "result"), m, "result.miner")
    at: Any = {"blockHash": codec.field(header, "hash", m, "result")}
    by_number = False
    while True:
        try:
            proof = await call("eth_getProof", ["0x" + miner.hex(), [], at])
            break
        except MethodNotSupported as e:
            return ProofSupport("unsupported", n, f"node has no eth_getProof ({e}): code cannot be proven")
        except RpcError as e:
            if e.code == _INVALID_PARAMS and not by_number:  # no EIP-1898 object: ask by number
                at, by_number = hex(n), True
                continue
            return ProofSupport("unavailable", n, f"node cannot prove state at block {n} ({e}): pruned state? "
                                                  "(an archive node, or a later start_block, is needed)")
    try:
        verify_account(header, miner, proof)
    except VerificationError as e:
        return ProofSupport("invalid", n, f"node's account proofs do not verify: {e}")
    except Exception as e:  # noqa: BLE001 - a malformed answer is a verdict here, not a crash
        return ProofSupport("invalid", n, f"node's account proof is malformed: {e}")
    how = " (it takes block numbers, not EIP-1898 block hashes)" if by_number else ""
    return ProofSupport("ok", n, f"node serves account proofs that verify at block {n}{how}", by_number)
