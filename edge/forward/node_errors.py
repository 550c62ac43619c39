"""What a node's refusal of a transaction means, across clients, and why a call reverted.

:func:`classify` reads a JSON-RPC error (code first, then the client's own words) from
``eth_sendRawTransaction`` / ``eth_estimateGas`` into one :data:`Refusal` kind the tx
sender acts on. The messages come from the clients' sources and docs, and from answers
captured from the clients that run here (anvil, Hardhat's EDR, EthereumJS):

========================  ====================================================================
kind                      what the clients say (lower-cased, spaces/underscores ignored)
========================  ====================================================================
``known``                 geth/Erigon/Nethermind "already known"; anvil "transaction already
                          imported"; EDR "Known transaction: 0x.."; Besu "Known transaction";
                          Nethermind (older) "AlreadyKnown"; EthereumJS "..: this transaction
                          is already in the TxPool"; Erigon "existing txn with same hash"
``nonce``                 geth/Erigon/anvil/Nethermind "nonce too low"; EDR "Transaction nonce
                          too low. Expected nonce to be at least ..."; Besu "Nonce too low";
                          Nethermind (older) "OldNonce"; EthereumJS "... (tx nonce too low)"
``underpriced``           "replacement transaction underpriced" (geth, anvil, EDR, Erigon,
                          Nethermind, Besu); geth/Nethermind "transaction underpriced"; geth/
                          anvil "max fee per gas less than block base fee"; EDR "Transaction
                          maxFeePerGas (..) is too low for the next block"; Besu "Gas price
                          below current base fee" / "below configured minimum gas price";
                          EthereumJS "replacement gas too low"; Erigon "fee too low", "could
                          not replace existing tx"; Nethermind (older) "FeeTooLow"
``funds``                 "insufficient funds" (geth, anvil, Erigon, Nethermind); EDR "Sender
                          doesn't have enough funds"; Besu "Upfront cost exceeds account
                          balance"; EthereumJS "... (insufficient balance)"
``never_fits``            the tx can never be included as it is: "exceeds block gas limit"
                          (geth, EDR, EthereumJS, Besu); anvil "intrinsic gas too high --
                          tx.gas_limit > env.block.gas_limit"; "intrinsic gas too low" (geth,
                          anvil, Nethermind); EDR "Transaction requires at least N gas";
                          Besu "Intrinsic gas exceeds gas limit"; Erigon "IntrinsicGas",
                          "gas limit is too high"; Nethermind "gas limit reached"; geth/
                          Erigon "oversized data"
``revert``                JSON-RPC code 3 (geth, anvil, Erigon, Nethermind), "execution
                          reverted" (Besu: -32000), EDR (-32603) "VM Exception while
                          processing transaction: reverted with reason string '..'"
``other``                 anything else (kept, logged once, retried), e.g. EthereumJS 0.10.5's
                          ``eth_estimateGas`` on a Clique chain ("extraData must be 97 bytes")
========================  ====================================================================

:func:`revert_reason` turns revert data into words: Solidity ``Error(string)``,
``Panic(uint256)``, a custom error of the project's contracts by name, or the selector.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = ["Refusal", "classify", "revert_data", "revert_reason"]

Refusal = Literal["known", "nonce", "underpriced", "funds", "never_fits", "revert", "other"]

_REVERT_WORDS: Final = ("executionreverted", "revertedwithreasonstring", "revertedwithcustomerror",
                        "revertedwithpanic", "vmexceptionwhileprocessingtransaction:revert",
                        "transactionreverted")
"""The words of a revert (geth/anvil/Erigon/Nethermind/Besu "execution reverted", EDR "VM
Exception while processing transaction: reverted with reason string ..."): checked before
the other words, since a contract's revert reason is free text ("execution reverted:
insufficient funds" is a revert, not the node refusing for funds)."""

_WORDS: Final[tuple[tuple[Refusal, tuple[str, ...]], ...]] = (
    ("known", ("alreadyknown", "knowntransaction", "alreadyimported", "transactionalreadyknown",
               "alreadyinthetxpool", "existingtxnwithsamehash")),
    ("nonce", ("noncetoolow", "nonceistoolow", "oldnonce")),
    ("never_fits", ("exceedsblockgaslimit", "gaslimitexceeded", "intrinsicgas", "oversizeddata",
                    "gaslimitistoolow", "gaslimitistoohigh", "gaslimitreached", "txistoobig",
                    "transactionrequiresatleast")),
    ("underpriced", ("underpriced", "replacementnotallowed", "feetoolow", "lessthanblockbasefee",
                     "istoolowforthenextblock", "gaspricebelow", "maxfeepergastoolow",
                     "replacementgastoolow", "couldnotreplaceexistingtx")),
    ("funds", ("insufficientfunds", "notenoughfunds", "doesn'thaveenoughfunds", "upfrontcost",
               "insufficientbalance", "notenoughbalance")),
)
_ERROR_SELECTOR: Final = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR: Final = bytes.fromhex("4e487b71")  # Panic(uint256)
_TRAILING_HEX: Final = re.compile(r"\s(0x(?:[0-9a-fA-F]{2})+)\s*$")


def classify(message: str, code: int | None = None) -> Refusal:
    """The kind of a node's JSON-RPC error ``message`` (with its ``code`` when known).

    Order: the JSON-RPC code where it is specific across clients: ``3`` is "execution
    reverted" with the revert data in ``data`` (geth, Erigon, Nethermind, anvil); then
    the words of a revert (:data:`_REVERT_WORDS`: a revert reason is the contract's free
    text and may say anything); then each client's own words (the module table; matched
    lower-cased with spaces and underscores removed); then anything that says "revert".
    Other codes decide nothing: Besu's -32001 (nonce too low) .. -32009 (below base fee)
    collide with anvil's -32003 (EIP-1474 "transaction rejected", which it answers for
    nonce, funds, known and fee refusals alike), and geth, EDR and Nethermind answer
    -32000 for all of them. Never raises. The captured answers of anvil, EDR and
    EthereumJS and the documented messages of the others are the test vectors
    (``tests/data/node_errors.json``).
    """
    if code == 3:
        return "revert"
    m = message.lower().replace(" ", "").replace("_", "")
    if any(w in m for w in _REVERT_WORDS):
        return "revert"
    for kind, words in _WORDS:
        if any(w in m for w in words):
            return kind
    if "revert" in m:
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
