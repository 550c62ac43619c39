"""The featurizer: parsing, metadata stripping, feature values, C == Python bit for bit."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import BytecodeError
from edge.scoring import features as F

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "contracts"

needs_c = pytest.mark.skipif(F.BACKEND != "c", reason="C extension edge.scoring._features not built")


def _py(code: bytes) -> np.ndarray:
    out = np.empty(F.N_FEATURES, dtype=np.float32)
    F._featurize_py(code, out)
    return out


def _idx(name: str) -> int:
    return F.FEATURE_NAMES.index(name)


def _trailer(cbor: bytes) -> bytes:
    return cbor + len(cbor).to_bytes(2, "big")


# A solc >= 0.6 style trailer: {"ipfs": <34 bytes>, "solc": <3 bytes>}
SOLC_TRAILER = _trailer(
    bytes([0xA2, 0x64]) + b"ipfs" + bytes([0x58, 0x22]) + bytes(range(34))
    + bytes([0x64]) + b"solc" + bytes([0x43, 0x00, 0x08, 0x1E])
)
# solc 0.4 style: {"bzzr0": <32 bytes>}
BZZR_TRAILER = _trailer(bytes([0xA1, 0x65]) + b"bzzr0" + bytes([0x58, 0x20]) + bytes(32))


# -- parse_bytecode -----------------------------------------------------------------


def test_parse_bytecode_accepts_hex_with_or_without_prefix() -> None:
    assert F.parse_bytecode("0x6080") == b"\x60\x80"
    assert F.parse_bytecode("6080") == b"\x60\x80"
    assert F.parse_bytecode("  0XABcd\n") == b"\xab\xcd"
    assert F.parse_bytecode("0x") == b""
    assert F.parse_bytecode(b"\x01\x02") == b"\x01\x02"
    assert F.parse_bytecode(bytearray(b"\x01")) == b"\x01"


@pytest.mark.parametrize(
    ("text", "words"),
    [("0x608", "odd"), ("0x60zz", "not hex"), ("0xg0", "not hex"), ("0x60 8080", "not hex"), ("0x6080\t80", "not hex")],
)
def test_parse_bytecode_rejects_bad_text(text: str, words: str) -> None:
    with pytest.raises(BytecodeError, match=words):
        F.parse_bytecode(text)


def test_parse_bytecode_rejects_other_types() -> None:
    with pytest.raises(BytecodeError, match="int"):
        F.parse_bytecode(1234)  # type: ignore[arg-type]


# -- strip_metadata -------------------------------------------------------------------


def test_strip_metadata_cuts_solc_trailers() -> None:
    body = bytes.fromhex("6080604052348015600f57600080fd5b50")
    assert F.strip_metadata(body + SOLC_TRAILER) == body
    assert F.strip_metadata(body + BZZR_TRAILER) == body


def test_strip_metadata_leaves_code_without_plausible_trailer() -> None:
    body = bytes.fromhex("6080604052348015600f57600080fd5b50")
    assert F.strip_metadata(body) == body
    # length pointing past the start of the code
    assert F.strip_metadata(b"\xa1\x00\xff") == b"\xa1\x00\xff"
    # length fits, but the bytes are no CBOR map
    assert F.strip_metadata(body + b"\x60\x01\x00\x02") == body + b"\x60\x01\x00\x02"
    # a CBOR map that does not end exactly before the length bytes
    bad = bytes([0xA1, 0x64]) + b"ipfs" + bytes([0x41, 0x01, 0x00])
    assert F.strip_metadata(body + _trailer(bad)) == body + _trailer(bad)
    assert F.strip_metadata(b"") == b""


def test_strip_metadata_on_real_compiled_artifacts() -> None:
    build = REPO / "node_modules" / "@openzeppelin" / "contracts" / "build" / "contracts"
    if not build.is_dir():
        pytest.skip("node_modules not installed (make setup)")
    checked = 0
    for art in sorted(build.glob("*.json")):
        raw = json.loads(art.read_text()).get("deployedBytecode") or "0x"
        code = F.parse_bytecode(raw) if "__" not in raw else b""
        if len(code) < 100:
            continue
        stripped = F.strip_metadata(code)
        declared = int.from_bytes(code[-2:], "big")
        assert len(code) - len(stripped) == declared + 2, art.name
        assert code[len(stripped)] in (0xA1, 0xA2, 0xA3), art.name
        checked += 1
    assert checked >= 5


# -- feature values -------------------------------------------------------------------


def test_layout_names_are_unique_and_sized() -> None:
    assert len(F.FEATURE_NAMES) == F.N_FEATURES == len(set(F.FEATURE_NAMES))


def test_known_selectors_are_keccak_of_their_signatures() -> None:
    from eth_hash.auto import keccak

    for sel, sig in F.KNOWN_SELECTORS:
        assert keccak(sig.encode())[:4] == sel.to_bytes(4, "big"), sig


def test_empty_code_gives_zeros() -> None:
    v = F.featurize(b"")
    assert v.shape == (F.N_FEATURES,) and v.dtype == np.float32
    assert not v.any()


def test_dispatcher_selectors_and_counts() -> None:
    # DUP1 PUSH4 transfer EQ PUSH2 0x0040 JUMPI ; PUSH4 0x12345678 DUP2 EQ ; PUSH4 0xffffffff AND
    code = bytes.fromhex("8063a9059cbb14610040576312345678811463ffffffff16")
    v = F.featurize(code)
    assert v[_idx("n_selectors")] == 2
    assert v[_idx("n_push4_other")] == 1
    assert v[_idx("sel:transfer(address,uint256)")] == 1
    assert v[_idx("sel:approve(address,uint256)")] == 0
    assert v[_idx("size_bytes")] == len(code)
    assert v[_idx("n_instr")] == 10
    assert v[_idx("count:JUMPI")] == 1
    assert v[_idx("ratio:PUSH4")] == np.float32(3 / 10)
    assert v[_idx("push_truncated")] == 0
    assert sum(v[_idx(f"selbucket:{k:02d}")] for k in range(64)) == 2


def test_push_data_is_skipped() -> None:
    # PUSH2 0xFFFF (0xFF would be SELFDESTRUCT if it were not data), then one real SELFDESTRUCT
    v = F.featurize(bytes.fromhex("61ffffff"))
    assert v[_idx("count:SELFDESTRUCT")] == 1
    assert v[_idx("n_instr")] == 2


def test_truncated_push_is_flagged_not_fatal() -> None:
    v = F.featurize(bytes.fromhex("600160"))  # PUSH1 0x01, PUSH1 with no data
    assert v[_idx("push_truncated")] == 1
    assert v[_idx("n_instr")] == 2


def test_undefined_opcodes_are_counted_apart() -> None:
    v = F.featurize(bytes([0x0C, 0x0D, 0x00]))
    assert v[_idx("n_undefined")] == 2
    assert v[_idx("ratio:UNDEFINED")] == np.float32(2 / 3)


def test_metadata_does_not_change_features() -> None:
    body = bytes.fromhex("6080604052348015600f57600080fd5b50")
    assert np.array_equal(F.featurize(body + SOLC_TRAILER), F.featurize(body))


def test_oversize_code_is_featurized() -> None:
    code = bytes([0x5B]) * (F.EIP170_MAX_CODE_SIZE + 5000)
    v = F.featurize(code)
    assert v[_idx("size_bytes")] == F.EIP170_MAX_CODE_SIZE + 5000
    assert v[_idx("count:JUMPDEST")] == F.EIP170_MAX_CODE_SIZE + 5000


def test_non_bytes_input_is_a_bytecode_error() -> None:
    with pytest.raises(BytecodeError):
        F.featurize("0x6080")  # type: ignore[arg-type]
    with pytest.raises(BytecodeError):
        F.featurize_many([b"\x00", 5])  # type: ignore[list-item]


def test_featurize_many_matches_featurize_and_accepts_buffers() -> None:
    codes: list[bytes] = [b"", bytes.fromhex("6080604052"), bytearray(b"\x60\x01\xff")]  # type: ignore[list-item]
    m = F.featurize_many(codes)
    assert m.shape == (3, F.N_FEATURES) and m.flags.c_contiguous
    for row, c in zip(m, codes):
        assert np.array_equal(row, F.featurize(bytes(c)))
    assert F.featurize_many([]).shape == (0, F.N_FEATURES)


def test_env_var_forces_the_python_fallback() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from edge.scoring import features as f; print(f.BACKEND)"],
        env={**os.environ, "EDGE_FEATURES": "python"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "python"


# -- C == Python --------------------------------------------------------------------


def _corpus_codes() -> Iterator[bytes]:
    for name in ("train.jsonl.gz", "unlabeled_train.jsonl.gz"):
        with gzip.open(DATA / name, "rt") as fh:
            for line in fh:
                yield F.parse_bytecode(json.loads(line)["bytecode"])


@needs_c
@pytest.mark.slow
def test_c_equals_python_on_the_whole_corpus() -> None:
    if not DATA.is_dir():
        pytest.skip(f"shared data folder {DATA} is absent")
    n = 0
    batch: list[bytes] = []

    def check(codes: list[bytes]) -> None:
        c = F.featurize_many(codes)
        for row, code in zip(c, codes):
            py = _py(code)
            assert np.array_equal(row.view(np.uint32), py.view(np.uint32)), code[:16].hex()

    for code in _corpus_codes():
        batch.append(code)
        if len(batch) == 512:
            check(batch)
            n += len(batch)
            batch = []
    check(batch)
    n += len(batch)
    assert n > 11_000


def _with_selectors(body: bytes, sels: list[int]) -> bytes:
    out = bytearray(body)
    for s in sels:
        out += b"\x80\x63" + s.to_bytes(4, "big") + b"\x14\x61\x00\x10\x57"
    return bytes(out)


code_strategy = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda b: b + SOLC_TRAILER, st.binary(max_size=500)),
    st.builds(_with_selectors, st.binary(max_size=300), st.lists(st.integers(0, 2**32 - 1), max_size=30)),
    st.builds(
        lambda b, n: b + n.to_bytes(2, "big"),
        st.binary(min_size=1, max_size=80).map(lambda b: bytes([0xA0 | (b[0] & 0x1F)]) + b[1:]),
        st.integers(0, 90),
    ),
)


@needs_c
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code_strategy)
def test_c_equals_python_on_fuzzed_bytes(code: bytes) -> None:
    c = F.featurize(code)
    py = _py(code)
    assert np.array_equal(c.view(np.uint32), py.view(np.uint32))
    assert np.isfinite(c).all()
    from edge.scoring import _features  # type: ignore[attr-defined]

    assert _features.metadata_len(code) == F._metadata_len(code)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_python_fallback_never_fails(code: bytes) -> None:
    v = _py(code)
    assert np.isfinite(v).all()
    assert v[_idx("size_bytes")] == len(F.strip_metadata(code))
