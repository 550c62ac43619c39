"""Compiled contract artifacts (``contracts/artifacts/*.json``) and a minimal deployer.

The artifacts are built by ``contracts/build.mjs`` (pinned solc, deterministic output)
and committed. They are found relative to the repository checkout the package runs
from (``<repo>/contracts/artifacts``; the package is installed editable), or under
``$EDGE_CONTRACTS_DIR/artifacts`` when that environment variable names a contracts
folder laid out like the repo's.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import BytecodeError, ContractBuildError

__all__ = [
    "Artifact",
    "CONTRACTS_DIR_ENV",
    "artifacts_dir",
    "load_artifact",
    "deployer_init_code",
    "DEPLOYER_PREFIX_LEN",
    "MAX_DEPLOYER_RUNTIME",
]

CONTRACTS_DIR_ENV = "EDGE_CONTRACTS_DIR"
"""Environment variable naming a contracts folder (artifacts in its ``artifacts/``)."""

DEPLOYER_PREFIX_LEN = 12
"""Length in bytes of the init code :func:`deployer_init_code` puts before the runtime."""

MAX_DEPLOYER_RUNTIME = 0xFFFF
"""Largest runtime (bytes) the deployer can return: its length is a PUSH2 operand."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


@dataclass(frozen=True, slots=True)
class Artifact:
    """One compiled contract.

    Attributes:
        name: the contract name (``"CrudStore"``), also the artifact's file stem.
        abi: the Solidity JSON ABI, a list of entry dicts as solc emits them.
        bytecode: creation (init) code, raw bytes; empty for interfaces.
        deployed_bytecode: runtime code as it appears on chain after deployment, raw
            bytes; equals ``eth_getCode`` except where the contract has immutables
            (Anchor and Attestations: OpenZeppelin EIP712 and the domain separator are
            written into the code at deployment).
    """

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes


def artifacts_dir() -> Path:
    """The folder holding ``<Name>.json`` artifacts.

    ``$EDGE_CONTRACTS_DIR/artifacts`` if the variable is set and non-empty, else
    ``<repo>/contracts/artifacts`` where ``<repo>`` is the parent of the ``edge``
    package folder. The folder is not checked for existence here.
    """
    override = os.environ.get(CONTRACTS_DIR_ENV, "")
    if override:
        return Path(override) / "artifacts"
    return Path(__file__).resolve().parents[2] / "contracts" / "artifacts"


def _hex_field(path: Path, data: dict[str, Any], key: str) -> bytes:
    value = data.get(key)
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise ContractBuildError(f"{path}: field {key!r} is not 0x-prefixed even-length hex")
    return bytes.fromhex(value[2:])


def load_artifact(name: str) -> Artifact:
    """Read the artifact of contract ``name`` from :func:`artifacts_dir`.

    Args:
        name: a Solidity contract name (identifier characters only), e.g. ``"Spawner"``.

    Returns:
        The :class:`Artifact` (ABI plus creation and runtime code as bytes).

    Raises:
        ContractBuildError: ``name`` is not an identifier, the file is missing (the
            message names the path and says how to build it), is not valid JSON, or
            lacks/has malformed ``abi``, ``bytecode`` or ``deployedBytecode`` fields,
            or its ``contractName`` differs from ``name``.
    """
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ContractBuildError(f"artifact name {name!r} is not a Solidity identifier")
    path = artifacts_dir() / f"{name}.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractBuildError(
            f"artifact not found: {path} (build it with `make contracts`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractBuildError(f"cannot read artifact {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractBuildError(f"artifact {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractBuildError(f"artifact {path}: top level is not a JSON object")
    if data.get("contractName") != name:
        raise ContractBuildError(
            f"artifact {path}: contractName is {data.get('contractName')!r}, not {name!r}"
        )
    abi = data.get("abi")
    if not isinstance(abi, list) or not all(isinstance(e, dict) for e in abi):
        raise ContractBuildError(f"artifact {path}: field 'abi' is not a list of objects")
    return Artifact(
        name=name,
        abi=abi,
        bytecode=_hex_field(path, data, "bytecode"),
        deployed_bytecode=_hex_field(path, data, "deployedBytecode"),
    )


def deployer_init_code(runtime: bytes) -> bytes:
    """Minimal init code that deploys exactly ``runtime`` as the new contract's code.

    The 12-byte prefix copies the bytes that follow it to memory and returns them
    (the EVM stores the returned bytes as the contract's code)::

        offset  bytes      opcode            stack after (top last)
        0x00    61 hh ll   PUSH2 len         len
        0x03    80         DUP1              len len
        0x04    60 0c      PUSH1 0x0c        len len 12       (runtime starts at 12)
        0x06    60 00      PUSH1 0x00        len len 12 0
        0x08    39         CODECOPY          len              mem[0:len] = code[12:12+len]
        0x09    60 00      PUSH1 0x00        len 0
        0x0b    f3         RETURN            -                return mem[0:len]
        0x0c    <runtime>

    Args:
        runtime: the runtime bytecode, 0..65535 bytes (``len`` is a big-endian PUSH2
            operand). The chain still applies its own rules when the code is deployed:
            EIP-170 (24,576 bytes unless the node lifts it).

    Returns:
        ``prefix + runtime`` (``12 + len(runtime)`` bytes).

    Raises:
        BytecodeError: ``runtime`` is not bytes-like, is longer than 0xFFFF bytes, or
            starts with 0xEF (rejected by every chain since London, EIP-3541).
    """
    if not isinstance(runtime, (bytes, bytearray, memoryview)):
        raise BytecodeError(
            f"runtime must be bytes, not {type(runtime).__name__}"
        )
    code = bytes(runtime)
    if len(code) > MAX_DEPLOYER_RUNTIME:
        raise BytecodeError(
            f"runtime is {len(code)} bytes; the deployer init code handles at most "
            f"{MAX_DEPLOYER_RUNTIME} (PUSH2 length)"
        )
    if code[:1] == b"\xef":
        raise BytecodeError("runtime starts with 0xEF, which EIP-3541 forbids deploying")
    prefix = (
        b"\x61" + len(code).to_bytes(2, "big")  # PUSH2 len
        + b"\x80"  # DUP1
        + b"\x60" + bytes([DEPLOYER_PREFIX_LEN])  # PUSH1 12 (runtime offset)
        + b"\x60\x00"  # PUSH1 0 (memory destination)
        + b"\x39"  # CODECOPY
        + b"\x60\x00"  # PUSH1 0 (memory offset)
        + b"\xf3"  # RETURN
    )
    return prefix + code
