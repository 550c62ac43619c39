"""CRC-32C checksums of records (RFC 3720 appendix B.4, the Castagnoli polynomial).

Each record carried out of the private chain has a CRC-32C over the *same bytes* whose
keccak256 is its Merkle leaf (its canonical ABI encoding, see :mod:`edge.evidence.merkle`).
The CRC is not a security measure (the Merkle root and the signatures are): it lets an
auditor point at *which* record of a checkpoint's metadata is damaged, cheaply.

The computation is delegated to the ``crc32c`` package (hardware CRC instructions on
x86-64 SSE 4.2 and ARMv8, a slicing-by-8 software fallback elsewhere); every path gives
the same value bit for bit.
"""

from __future__ import annotations

import crc32c as _crc32c_lib

from edge.errors import CryptoError

__all__ = ["crc32c", "crc32c_hex"]


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-32C (Castagnoli, RFC 3720 B.4) of ``data``.

    Args:
        data: the bytes to checksum (``bytes``, ``bytearray`` or ``memoryview``).

    Returns:
        The checksum as an unsigned 32-bit int (``0 <= value < 2**32``). Reflected
        polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF, as in iSCSI,
        ext4 and SCTP: ``crc32c(b"123456789") == 0xE3069283``.

    Raises:
        CryptoError: ``data`` is not a bytes-like object.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CryptoError(f"crc32c: expected bytes, got {type(data).__name__}")
    return int(_crc32c_lib.crc32c(data))


def crc32c_hex(data: bytes | bytearray | memoryview) -> str:
    """Return the CRC-32C of ``data`` as 8 lowercase hex digits (no ``0x``), for JSON.

    Raises:
        CryptoError: ``data`` is not a bytes-like object.
    """
    return f"{crc32c(data):08x}"
