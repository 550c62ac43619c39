"""probe_proofs against real anvils (one proving, one with pruned history) and through
the fault proxy (no eth_getProof; proofs that do not verify)."""

from __future__ import annotations

from edge.chain.proof_probe import probe_proofs
from edge.rpc.ws import WsRpc
from tests.faultproxy import Fault, FaultProxy


async def test_probe_verdicts(chain_factory) -> None:
    chain = await chain_factory(extra_args=("--no-mining",))
    for _ in range(3):
        await chain.rpc("evm_mine")
    h1 = await chain.rpc("eth_getBlockByNumber", "0x1", False)
    async with FaultProxy(chain.ws_url) as proxy, WsRpc(proxy.url, timeout=5.0) as rpc:
        v = await probe_proofs(rpc.call, h1)
        assert v.available and v.status == "ok" and v.block == 1
        proxy.add(Fault("eth_getProof", "error", error=(-32601, "the method eth_getProof does not exist"), times=1))
        v = await probe_proofs(rpc.call, h1)
        assert v.status == "unsupported" and "no eth_getProof" in v.reason
        proxy.add(Fault("eth_getProof", "flip", path="accountProof[0]", times=1))
        v = await probe_proofs(rpc.call, h1)
        assert v.status == "invalid" and "do not verify" in v.reason and not v.available


async def test_pruned_state_is_unavailable(chain_factory) -> None:
    chain = await chain_factory(extra_args=("--no-mining", "--prune-history", "2"))
    for _ in range(5):
        await chain.rpc("evm_mine")
    old, new = (await chain.batch([("eth_getBlockByNumber", ["0x1", False]), ("eth_getBlockByNumber", ["0x5", False])]))
    async with WsRpc(chain.ws_url, timeout=5.0) as rpc:
        v = await probe_proofs(rpc.call, old)
        assert v.status == "unavailable" and "pruned" in v.reason and "block 1" in v.reason
        assert (await probe_proofs(rpc.call, new)).available


async def test_a_node_without_eip1898_hashes_is_asked_by_number_and_still_verified(chain_factory) -> None:
    """EthereumJS 0.10.5 refuses ``{"blockHash": ...}`` in eth_getProof (-32602, "argument
    must be a string") but proves state at a block number. The real answers come from
    anvil; only the refusal is written here (anvil takes both forms)."""
    from typing import Any

    from edge.errors import RpcError

    chain = await chain_factory(extra_args=("--no-mining",))
    await chain.rpc("evm_mine")
    h1 = await chain.rpc("eth_getBlockByNumber", "0x1", False)
    asked: list[Any] = []
    async with WsRpc(chain.ws_url, timeout=5.0) as rpc:
        async def no_hashes(method: str, params: Any = ()) -> Any:
            if method == "eth_getProof":
                asked.append(params[2])
                if isinstance(params[2], dict):
                    raise RpcError(method, -32602, "invalid argument 2: argument must be a string")
            return await rpc.call(method, params)

        v = await probe_proofs(no_hashes, h1)
        assert v.status == "ok" and v.by_number and "block numbers" in v.reason
        assert asked == [{"blockHash": h1["hash"]}, "0x1"]
        # a proof by number is still checked against the header read by hash: a header of
        # another block (another stateRoot) fails
        other = dict(h1, stateRoot="0x" + "11" * 32)
        assert (await probe_proofs(no_hashes, other)).status == "invalid"
