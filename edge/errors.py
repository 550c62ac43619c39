"""The one error hierarchy of the edge gateway.

Every error the agent raises on purpose derives from :class:`EdgeError`, so a caller
can catch the whole family at one place (the CLI does, and turns it into a one-line
message and exit code 2). Each error's message names *what* was wrong (a config key, an
RPC method, a block number, a file) so that an operator can act on it from the journal
alone.

The tree::

    EdgeError
    ├── ConfigError                 bad or unknown key/value in the TOML config
    ├── UsageError                  a bad command-line argument (not the config file)
    ├── ChainError                  talking to a chain node (transient: retried)
    │   ├── NodeUnavailable         cannot connect / connection dropped
    │   │   └── RpcTimeout          connected, but no answer in time
    │   ├── ChainIdMismatch         the node reports another chain id than configured
    │   ├── RpcError                node answered with a JSON-RPC error object
    │   │   └── MethodNotSupported  -32601 / "method not found" (optional features)
    │   └── RpcProtocolError        node answered something that is not valid JSON-RPC
    │       │                       or not the shape the method promises
    │       └── BlockChanged        the block changed on the node while it was read
    ├── SealError                   a PoA header whose seal cannot be recovered
    ├── OutboxError                 the SQLite outbox
    │   ├── OutboxFull              size limit or disk full: ingest pauses, nothing lost
    │   └── SchemaError             database written by a newer/unknown schema
    ├── BytecodeError               runtime bytecode that cannot be featurized
    ├── ModelError                  ONNX model missing, unreadable or of the wrong shape
    ├── CryptoError                 key, signature or ciphertext problems
    │   └── DecryptionError         wrong key or tampered ciphertext (AES-GCM tag)
    ├── DevChainError               a local anvil could not be started or stopped
    └── ContractBuildError          solc could not compile, or artifacts are stale
"""

from __future__ import annotations

__all__ = [
    "EdgeError",
    "ConfigError",
    "UsageError",
    "ChainError",
    "NodeUnavailable",
    "RpcTimeout",
    "ChainIdMismatch",
    "RpcError",
    "MethodNotSupported",
    "RpcProtocolError",
    "BlockChanged",
    "SealError",
    "OutboxError",
    "OutboxFull",
    "SchemaError",
    "BytecodeError",
    "ModelError",
    "CryptoError",
    "DecryptionError",
    "DevChainError",
    "ContractBuildError",
]


class EdgeError(Exception):
    """Root of every error the edge gateway raises on purpose."""


class ConfigError(EdgeError):
    """The configuration is invalid.

    Attributes:
        key: dotted path of the offending key (``"chain.confirmations"``), or ``""``
            when the file as a whole is unreadable.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"config: {key}: {message}" if key else f"config: {message}")


class UsageError(EdgeError):
    """A command-line argument is invalid (a flag value, a file named on the command
    line); the message names the argument (``--quorum: must be 1..--devices (3), got 5``).
    Exit status 2, like a config error.

    Attributes: argument: the flag or command at fault (``"--quorum"``).
    """

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(f"{argument}: {message}")


class ChainError(EdgeError):
    """A problem talking to a chain node (base class). Always transient from the agent's
    point of view: logged, retried on a fresh connection, never the operator's mistake."""


class NodeUnavailable(ChainError):
    """The node cannot be reached, or the connection dropped."""


class RpcTimeout(NodeUnavailable):
    """The node was reached but did not answer within the configured timeout (kept apart
    from a refused or dropped connection, as httpx keeps ``TimeoutException``)."""


class AnswerTooLarge(NodeUnavailable):
    """An answer was over the transport's frame limit (WebSocket close code 1009, RFC 6455
    §7.4.1), so the connection dropped: the same request will never pass; the caller
    asks for less (the ingest halves its block batch, as for :class:`RpcTimeout`)."""


class ChainIdMismatch(ChainError):
    """The node reports another chain id (EIP-695 ``eth_chainId``) than the config says.

    An alarm and a wait, never an exit: the answer may be a transient fault of a sick
    node, and a wrong node is fixed without restarting the agent. The message names the
    config key to check. Attributes: expected, reported (ints).
    """

    def __init__(self, url: str, key: str, expected: int, reported: int) -> None:
        self.expected = expected
        self.reported = reported
        super().__init__(f"eth_chainId: the node at {url} reports chain id {reported}, but {key} is {expected}: "
                         f"waiting for the right chain (check the node or {key})")


class RpcError(ChainError):
    """The node answered a request with a JSON-RPC error object.

    Attributes:
        method: the JSON-RPC method that failed.
        code: the JSON-RPC error code (int) as sent by the node.
    """

    def __init__(self, method: str, code: int, message: str) -> None:
        self.method = method
        self.code = code
        super().__init__(f"{method}: node error {code}: {message}")


class MethodNotSupported(RpcError):
    """The node does not implement an (optional) method, e.g. ``trace_block``."""


class RpcProtocolError(ChainError):
    """The node's answer is not valid JSON-RPC, or not the shape the method promises.

    Attributes:
        method: the JSON-RPC method whose answer was malformed.
    """

    def __init__(self, method: str, message: str) -> None:
        self.method = method
        super().__init__(f"{method}: malformed answer: {message}")


class BlockChanged(RpcProtocolError):
    """A block's data changed on the node while it was being read (a reorg raced the
    read: e.g. receipts of another block than the header). Not an error of the node's:
    the reader drops the batch from that block on and reads it again."""


class SealError(EdgeError):
    """A PoA header whose seal (Clique extraData / AuRa signature) cannot be recovered."""


class OutboxError(EdgeError):
    """A problem with the SQLite outbox (base class)."""


class OutboxFull(OutboxError):
    """The outbox reached its size limit or the disk is full; the writer must pause."""


class SchemaError(OutboxError):
    """The database was written by an unknown (newer) schema version."""


class BytecodeError(EdgeError):
    """Runtime bytecode that is not valid input (non-hex, odd length, ...)."""


class ModelError(EdgeError):
    """The ONNX risk model is missing, unreadable or of an unexpected shape."""


class CryptoError(EdgeError):
    """A key, signature or ciphertext problem (base class)."""


class DecryptionError(CryptoError):
    """Decryption failed: wrong key, or the ciphertext or its tag was tampered with."""


class DevChainError(EdgeError):
    """A local anvil dev chain could not be started, reached or stopped."""


class ContractBuildError(EdgeError):
    """solc failed, or the committed artifacts differ from the sources."""
