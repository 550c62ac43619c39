"""What a node's refusal of a transaction means, across clients, and why a call reverted.

:func:`classify` reads a JSON-RPC error (code first, then the client's own words) from
``eth_sendRawTransaction`` / ``eth_estimateGas`` into one :data:`Refusal` kind the tx
sender acts on. The messages come from the clients' sources and docs, and from answers
captured from the clients that run here (anvil, Hardhat's EDR, EthereumJS):

========================  ====================================================================
kind                      what the clients say (lower-cased, spaces/underscores ignored)
========================  ====================================================================
``known``                 geth/Erigon "already known"; anvil "transaction already imported";
                          EDR "known transaction"; Nethermind "AlreadyKnown"; Besu
                          "TRANSACTION_ALREADY_KNOWN"; OpenEthereum "already imported"
``nonce``                 geth/Erigon/anvil "nonce too low"; EDR "Nonce too low. Expected
                          nonce to be ..."; Nethermind "OldNonce"; Besu "NONCE_TOO_LOW";
                          EthereumJS "tx nonce too low"
``underpriced``           "replacement transaction underpriced" (geth, anvil, EDR, Erigon);
                          Besu "REPLACEMENT_UNDERPRICED"; Nethermind "FeeTooLow",
                          "ReplacementNotAllowed", "FeeTooLowToCompete"; geth "transaction
                          underpriced", "max fee per gas less than block base fee"; EDR
                          "maxFeePerGas ... is too low"; Besu "GAS_PRICE_BELOW_CURRENT_BASE_FEE"
``funds``                 "insufficient funds" (geth, anvil, Erigon, Nethermind
                          "InsufficientFunds"); EDR "doesn't have enough funds"; Besu
                          "UPFRONT_COST_EXCEEDS_BALANCE"; EthereumJS "insufficient balance"
``never_fits``            the tx can never be included as it is: geth/anvil "exceeds block gas
                          limit", EDR "exceeds block gas limit", Besu "EXCEEDS_BLOCK_GAS_LIMIT",
                          Nethermind "GasLimitExceeded", "intrinsic gas too high"/"too low",
                          Besu "INTRINSIC_GAS_EXCEEDS_GAS_LIMIT", geth "oversized data",
                          EthereumJS "gasLimit is too low"
``revert``                JSON-RPC code 3 (geth's execution error) or "execution reverted"
``other``                 anything else (kept, logged once, retried)
========================  ====================================================================

:func:`revert_reason` turns revert data into words: Solidity ``Error(string)``,
``Panic(uint256)``, a custom error of the project's contracts by name, or the selector.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = ["Refusal", "classify", "revert_data", "revert_reason"]

Refusal = Literal["known", "nonce", "underpriced", "funds", "never_fits", "revert", "other"]

_WORDS: Final[tuple[tuple[Refusal, tuple[str, ...]], ...]] = (
    ("known", ("alreadyknown", "knowntransaction", "alreadyimported", "transactionalreadyknown")),
    ("nonce", ("noncetoolow", "nonceistoolow", "oldnonce")),
    ("never_fits", ("exceedsblockgaslimit", "gaslimitexceeded", "intrinsicgastoohigh", "intrinsicgastoolow",
                    "intrinsicgasexceedsgaslimit", "oversizeddata", "gaslimitistoolow", "txistoobig")),
    ("underpriced", ("underpriced", "replacementnotallowed", "feetoolow", "lessthanblockbasefee",
                     "istoolowforthenextblock", "gaspricebelowcurrentbasefee", "maxfeepergastoolow")),
    ("funds", ("insufficientfunds", "notenoughfunds", "doesn'thaveenoughfunds", "upfrontcostexceedsbalance",
               "insufficientbalance")),
)
_ERROR_SELECTOR: Final = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR: Final = bytes.fromhex("4e487b71")  # Panic(uint256)
_TRAILING_HEX: Final = re.compile(r"\s(0x(?:[0-9a-fA-F]{2})+)\s*$")


def classify(message: str, code: int | None = None) -> Refusal:
    """The kind of a node's JSON-RPC error ``message`` (with its ``code`` when known).

    A client's own words decide first (they are specific); JSON-RPC code 3 (geth's
    "execution error", revert data in ``data``) or the words "execution reverted" mean a
    revert. Never raises.
    """
    m = message.lower().replace(" ", "").replace("_", "")
    for kind, words in _WORDS:
        if any(w in m for w in words):
            return kind
    if code == 3 or "executionreverted" in m or "revert" in m:
        return "revert"
    return "other"


def revert_data(message: str) -> bytes:
    """The ABI-encoded revert data at the end of an error message (HTTP and WebSocket
    transports append a JSON-RPC error's ``data`` as ``0x..``); ``b""`` when none."""
    found = _TRAILING_HEX.search(message)
    return bytes.fromhex(found.group(1)[2:]) if found else b""


def revert_reason(message: str) -> str:
    """Best words for a revert: Solidity ``Error(string)``, ``Panic(uint256)``, a custom
    error of the Anchor contract by name (:func:`edge.contracts.anchor.decode_anchor_error`),
    another custom error by selector, or the node's message. Never raises."""
    raw = revert_data(message)
    found = _TRAILING_HEX.search(message)
    if found:
        message = message[: found.start()]
    if raw[:4] == _ERROR_SELECTOR and len(raw) >= 68:
        from eth_abi.abi import decode

        try:
            (text,) = decode(["string"], raw[4:])
            return f"execution reverted: {text}"
        except Exception:  # noqa: BLE001 - malformed revert data: fall back to the message
            pass
    if raw[:4] == _PANIC_SELECTOR and len(raw) >= 36:
        return f"execution reverted: panic 0x{int.from_bytes(raw[4:36], 'big'):02x}"
    if len(raw) >= 4:
        from edge.contracts.anchor import decode_anchor_error
        from edge.errors import RpcProtocolError

        try:
            err = decode_anchor_error(raw)
            return f"execution reverted: {err.name}{err.args}"
        except RpcProtocolError:
            pass
        return f"{message or 'execution reverted'} (custom error 0x{raw[:4].hex()}, data 0x{raw.hex()[:200]})"
    return message or "execution reverted"
