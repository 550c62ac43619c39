"""edge.forward.node_errors.classify on real answers: captured from anvil, Hardhat's EDR and
EthereumJS (tests/capture_node_errors.py), and the documented messages of geth,
Nethermind, Besu and Erigon (tests/data/node_errors.json cites each source file)."""

# EthereumJS runs only through edge.devnet.ethereumjs: --discDns false --discV4 false
# --dnsAddr 127.0.0.1 --extIP 127.0.0.1, every port on 127.0.0.1, inside a network namespace.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.forward.node_errors import classify, revert_reason

DATA = json.loads((Path(__file__).parent / "data" / "node_errors.json").read_text())
REFUSED = [r for r in DATA["captured"] if not r.get("accepted")]


def _id(r: dict[str, Any]) -> str:
    return f"{r['client']}:{r.get('scenario') or r['message']}"


def test_vectors_cover_every_client_and_scenario() -> None:
    clients = {r["client"] for r in DATA["captured"]} | {r["client"] for r in DATA["documented"]}
    assert clients == {"anvil", "hardhat-edr", "ethereumjs", "geth", "nethermind", "besu", "erigon"}
    for client in ("anvil", "hardhat-edr"):  # the two that carry transactions: every refusal
        got = {r["scenario"] for r in REFUSED if r["client"] == client}
        assert got >= {"nonce too low", "already known", "replacement underpriced", "insufficient funds",
                       "exceeds block gas limit", "intrinsic gas too low", "fee below base fee",
                       "revert in eth_estimateGas"}, client
    for r in DATA["captured"]:
        assert r["version"] and r["method"], r
        assert r.get("accepted") or isinstance(r["code"], int) and r["message"], r
    for r in DATA["documented"]:
        assert r["source"]["repository"] and r["source"]["file"], r


@pytest.mark.parametrize("row", REFUSED, ids=_id)
def test_captured_answer_is_classified(row: dict[str, Any]) -> None:
    assert classify(row["message"], row["code"]) == row["kind"]
    # as the tx sender sees it: the transport's RpcError text around the message
    assert classify(f"{row['method']}: node error {row['code']}: {row['message']}", row["code"]) == row["kind"]


@pytest.mark.parametrize("row", DATA["documented"], ids=_id)
def test_documented_message_is_classified(row: dict[str, Any]) -> None:
    assert classify(row["message"], row["code"]) == row["kind"]


def test_code_3_and_revert_words_come_before_the_other_words() -> None:
    """A revert reason is the contract's free text: it must not read as a refusal."""
    assert classify("execution reverted: nonce too low", 3) == "revert"
    assert classify("execution reverted: insufficient funds", -32000) == "revert"
    assert classify("Error: VM Exception while processing transaction: reverted with reason string "
                    "'replacement transaction underpriced'", -32603) == "revert"
    assert classify("nonce too low", -32003) == "nonce"  # anvil's -32003 alone decides nothing
    assert classify("something new", None) == "other"


def test_revert_reason_of_each_client() -> None:
    for r in REFUSED:
        if r["kind"] == "revert":
            assert "already anchored" in revert_reason(r["message"]), r
