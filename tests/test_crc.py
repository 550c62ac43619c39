"""CRC-32C (RFC 3720 B.4) of record bytes: edge.evidence.crc."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.errors import CryptoError
from edge.evidence.crc import crc32c, crc32c_hex


def _crc32c_bitwise(data: bytes) -> int:
    """Independent reference: bit-at-a-time reflected CRC, poly 0x82F63B78."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes(32), 0x8A9136AA),  # RFC 3720 B.4: 32 bytes of zeros
        (b"\xff" * 32, 0x62A8AB43),  # 32 bytes of ones
        (bytes(range(32)), 0x46DD794E),  # incrementing 0x00..0x1f
        (bytes(range(31, -1, -1)), 0x113FDB5C),  # decrementing 0x1f..0x00
        (b"123456789", 0xE3069283),  # the CRC catalogue check value
        (b"", 0x00000000),
    ],
)
def test_rfc3720_vectors(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected
    assert _crc32c_bitwise(data) == expected  # the oracle agrees with the RFC too


@given(st.binary(max_size=300))
def test_matches_bitwise_reference(data: bytes) -> None:
    assert crc32c(data) == _crc32c_bitwise(data)


@given(st.binary(max_size=64))
def test_bytes_like_inputs_agree(data: bytes) -> None:
    assert crc32c(bytearray(data)) == crc32c(memoryview(data)) == crc32c(data)


def test_hex_form() -> None:
    assert crc32c_hex(b"123456789") == "e3069283"
    assert crc32c_hex(b"") == "00000000"  # zero-padded to 8 digits


def test_detects_single_bit_flip() -> None:
    data = bytearray(range(200))
    base = crc32c(bytes(data))
    for i in range(0, len(data) * 8, 37):
        data[i // 8] ^= 1 << (i % 8)
        assert crc32c(bytes(data)) != base
        data[i // 8] ^= 1 << (i % 8)


@pytest.mark.parametrize("bad", ["123456789", 12, None])
def test_non_bytes_rejected(bad: object) -> None:
    with pytest.raises(CryptoError, match="expected bytes"):
        crc32c(bad)  # type: ignore[arg-type]
