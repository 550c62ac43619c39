"""Merkle trees verifiable by OpenZeppelin 5 MerkleProof: edge.evidence.merkle."""

from __future__ import annotations

import math

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import CryptoError
from edge.evidence.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    hash_pair,
    merkle_proof,
    merkle_root,
    process_proof,
    record_leaf,
    verify_proof,
)


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [keccak(salt + i.to_bytes(8, "big")) for i in range(n)]


# A dump of OpenZeppelin's own JS library: SimpleMerkleTree.of(values, {sortLeaves:
# false}) v1.0.6, file test/dumps/simple-v1.unsorted.1_0_6.json of the
# OpenZeppelin/merkle-tree repository ("values" in tree order, "tree"[0] is the root).
_OZ_VALUES = [
    "3ac225168df54212a25c1c01fd35bebfea408fdac2e31ddd6f80a4bbf9a5f1cb",
    "b5553de315e0edf504d9150af82dafa5c4667fa618ed0a6f19c69b41166c5510",
    "0b42b6393c1f53060fe3ddbfcd7aadcca894465a5a438f69c87d790b2299b9b2",
    "f1918e8562236eb17adc8502332f4c9c82bc14e19bfc0aa10ab674ff75b3d2f3",
    "a8982c89d80987fb9a510e25981ee9170206be21af3c8e0eb312ef1d3382e761",
    "d1e8aeb79500496ef3dc2e57ba746a8315d048b7a664a2bf948db4fa91960483",
]
_OZ_ROOT = "9012f1e18a87790d2e01faace75aaaca38e53df437cdce2c0552464dda4af49c"
_OZ_INTERNAL = [  # tree[1..4] of the same dump
    "68203f90e9d07dc5859259d7536e87a6ba9d345f2552b5b9de2999ddce9ce1bf",
    "f0b49bb4b0d9396e0315755ceafaa280707b32e75e6c9053f5cdf2679dcd5c6a",
    "d253a52d4cb00de2895e85f2529e2976e6aaaa5c18106b68ab66813e14415669",
    "805b21d846b189efaeb0377d6bb0d201b3872a363e607c25088f025b0c6ae1f8",
]


def test_matches_openzeppelin_js_library_dump() -> None:
    leaves = [bytes.fromhex(v) for v in _OZ_VALUES]
    tree = MerkleTree(leaves)
    assert tree.root.hex() == _OZ_ROOT
    internal = [bytes.fromhex(h) for h in _OZ_INTERNAL]
    # leaf 0 sits at array index 10, its sibling is leaf 1 (index 9), its parent is
    # index 4, whose sibling is index 3, parent 1, sibling 2: proof = [l1, t3, t2].
    assert tree.proof(0) == [leaves[1], internal[2], internal[1]]
    for k, leaf in enumerate(leaves):
        assert verify_proof(tree.proof(k), bytes.fromhex(_OZ_ROOT), leaf)


def test_hash_pair_is_commutative_sorted_keccak() -> None:
    a, b = _leaves(2)
    lo, hi = sorted((a, b))
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(lo + hi)


@pytest.mark.parametrize("n", range(1, 34))
def test_every_proof_verifies(n: int) -> None:
    leaves = _leaves(n)
    tree = MerkleTree(leaves)
    root = tree.root
    assert root == merkle_root(leaves)
    assert len(tree) == n
    for k in range(n):
        proof = tree.proof(k)
        assert tree.leaf(k) == leaves[k]
        assert proof == merkle_proof(leaves, k)
        assert math.floor(math.log2(n)) <= len(proof) <= math.ceil(math.log2(n))
        assert verify_proof(proof, root, leaves[k])
        assert process_proof(proof, leaves[k]) == root


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 33])
def test_wrong_leaf_root_or_proof_fails(n: int) -> None:
    leaves = _leaves(n)
    tree = MerkleTree(leaves)
    other = keccak(b"not a leaf")
    other_root = merkle_root(_leaves(n, b"other"))
    for k in range(n):
        proof = tree.proof(k)
        assert not verify_proof(proof, tree.root, other)
        assert not verify_proof(proof, other_root, leaves[k])
        for j in range(len(proof)):  # any changed sibling breaks the proof
            bad = list(proof)
            bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
            assert not verify_proof(bad, tree.root, leaves[k])
        if proof:
            assert not verify_proof(proof[:-1], tree.root, leaves[k])
        if n > 1:  # another leaf's proof does not prove this leaf
            assert not verify_proof(tree.proof((k + 1) % n), tree.root, leaves[k])


def test_order_of_leaves_matters_for_the_root() -> None:
    leaves = _leaves(5)
    assert merkle_root(leaves) != merkle_root(leaves[::-1])


def test_single_and_empty_trees() -> None:
    (leaf,) = _leaves(1)
    assert merkle_root([leaf]) == leaf
    assert merkle_proof([leaf], 0) == []
    assert merkle_root([]) == EMPTY_ROOT == bytes(32)
    empty = MerkleTree([])
    assert empty.root == EMPTY_ROOT and len(empty) == 0
    with pytest.raises(CryptoError, match="out of range for 0 leaves"):
        empty.proof(0)


def test_bad_inputs_are_named() -> None:
    leaves = _leaves(4)
    with pytest.raises(CryptoError, match="leaf 2 must be 32 bytes, got 31"):
        MerkleTree(leaves[:2] + [b"\x00" * 31] + leaves[3:])
    with pytest.raises(CryptoError, match="leaf 0 must be 32 bytes, got str"):
        merkle_root(["00" * 32])  # type: ignore[list-item]
    tree = MerkleTree(leaves)
    with pytest.raises(CryptoError, match="index 4 out of range"):
        tree.proof(4)
    with pytest.raises(CryptoError, match="index -1 out of range"):
        tree.leaf(-1)
    with pytest.raises(CryptoError, match="must be an int"):
        tree.proof(True)
    with pytest.raises(CryptoError, match=r"proof\[1\] must be 32 bytes"):
        verify_proof([leaves[0], b"\x01"], tree.root, leaves[1])
    with pytest.raises(CryptoError, match="root must be 32 bytes"):
        verify_proof([], b"", leaves[1])


def test_record_leaf_hashes_abi_encoding() -> None:
    encoded = b"".join(i.to_bytes(32, "big") for i in (1337, 12, 3, 4))
    assert record_leaf(encoded) == keccak(encoded)


@pytest.mark.parametrize(
    ("size", "reason"), [(0, "multiple of 32"), (33, "multiple of 32"), (64, "second preimage")]
)
def test_record_leaf_refuses_unsafe_encodings(size: int, reason: str) -> None:
    with pytest.raises(CryptoError, match=reason):
        record_leaf(bytes(size))


def test_internal_node_poses_as_leaf_without_record_leaf() -> None:
    """Why leaves must be recomputed from records: an internal node 'verifies' too.

    The 64 bytes under an internal node are exactly what record_leaf refuses.
    """
    leaves = _leaves(4)
    tree = MerkleTree(leaves)
    proof = tree.proof(0)
    node = hash_pair(leaves[0], proof[0])
    assert verify_proof(proof[1:], tree.root, node)  # OpenZeppelin would accept it too
    lo, hi = sorted((leaves[0], proof[0]))
    with pytest.raises(CryptoError, match="second preimage"):
        record_leaf(lo + hi)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70), st.data())
def test_property_any_leaves_any_index(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree(leaves)
    k = data.draw(st.integers(0, len(leaves) - 1))
    assert verify_proof(tree.proof(k), tree.root, leaves[k])
    assert merkle_root(list(leaves)) == tree.root
