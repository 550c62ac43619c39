"""Merkle trees whose proofs OpenZeppelin 5's ``MerkleProof.verify`` accepts.

Construction (the one of OpenZeppelin's ``@openzeppelin/merkle-tree`` library, i.e.
``SimpleMerkleTree.of(leaves, {sortLeaves: false})``, core ``makeMerkleTree``):

* Nodes are 32 bytes. Leaves are 32-byte hashes supplied by the caller, kept in the
  caller's order (for checkpoints: record key order); they are *not* re-sorted.
* The tree is a complete binary tree stored as an array of ``2n - 1`` nodes (heap
  layout: children of node ``i`` are ``2i + 1`` and ``2i + 2``). Leaf ``k`` lives at
  array index ``2n - 2 - k``, and each internal node is
  ``parent = keccak256(min(a, b) || max(a, b))`` (sorted pair, bytes compared as
  big-endian unsigned integers, exactly ``Hashes.commutativeKeccak256``). There is no
  odd-node promotion and no padding: every internal node has two children.
* The proof of a leaf is the list of siblings from the leaf up to the root (its length
  is ``floor(log2 n)`` or ``ceil(log2 n)``). Because pairs are sorted, the proof needs
  no left/right flags, and :func:`verify_proof` is OpenZeppelin's ``processProof``.
* One leaf: the root is that leaf and its proof is ``[]``. No leaves: the root is
  defined as 32 zero bytes (:data:`EMPTY_ROOT`, ``bytes32(0)``) and no proof exists;
  the OpenZeppelin JS library refuses an empty tree, so a checkpoint with no records
  anchors ``bytes32(0)``.

Security: a leaf must be the keccak256 of a record's encoding, computed by the verifier
itself from the record (:func:`record_leaf`), never a value taken on trust and never
64 raw bytes of data: an internal node is keccak256 of 64 bytes, so accepting arbitrary
64-byte preimages (or arbitrary leaf values) would let an internal node pose as a leaf
(second-preimage attack). :func:`record_leaf` therefore refuses 64-byte encodings.

The hot path (one :class:`MerkleTree` per checkpoint) does ``n - 1`` keccak calls of
64 bytes each, about 4 µs apiece here with the eth-hash backend.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_hash.auto import keccak

from edge.errors import CryptoError

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "hash_pair",
    "merkle_proof",
    "merkle_root",
    "process_proof",
    "record_leaf",
    "verify_proof",
]

EMPTY_ROOT: bytes = bytes(32)
"""Root of a tree with no leaves: ``bytes32(0)``."""

_NODE_LEN = 32


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Return ``keccak256(min(a, b) || max(a, b))`` for two 32-byte nodes.

    This is OpenZeppelin 5's ``Hashes.commutativeKeccak256`` (used by ``MerkleProof``):
    the order of the arguments does not matter.

    Raises:
        CryptoError: a node is not exactly 32 bytes.
    """
    _check_node(a, "node a")
    _check_node(b, "node b")
    return _hash_pair(bytes(a), bytes(b))


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a < b else b + a)


def _check_node(node: object, what: str) -> bytes:
    if not isinstance(node, (bytes, bytearray, memoryview)):
        raise CryptoError(f"merkle: {what} must be 32 bytes, got {type(node).__name__}")
    if len(node) != _NODE_LEN:
        raise CryptoError(f"merkle: {what} must be 32 bytes, got {len(node)} bytes")
    return bytes(node)


def record_leaf(encoded: bytes) -> bytes:
    """Return the Merkle leaf of a record: ``keccak256(encoded)`` (32 bytes).

    Args:
        encoded: the record's canonical ABI encoding (``abi.encode`` of its fields, so a
            non-empty multiple of 32 bytes). The record's CRC-32C is taken over the same
            bytes (:func:`edge.evidence.crc.crc32c`).

    Raises:
        CryptoError: ``encoded`` is empty, not a multiple of 32 bytes (not an ABI
            encoding), or exactly 64 bytes long (would collide with the preimage shape
            of an internal node: second-preimage attack).
    """
    if not isinstance(encoded, (bytes, bytearray, memoryview)):
        raise CryptoError(f"record_leaf: expected bytes, got {type(encoded).__name__}")
    n = len(encoded)
    if n == 0 or n % 32:
        raise CryptoError(
            f"record_leaf: encoding is {n} bytes; an ABI encoding is a non-empty multiple of 32"
        )
    if n == 64:
        raise CryptoError(
            "record_leaf: a 64-byte record encoding is refused (it could be confused with "
            "an internal Merkle node: second preimage); add a field or a type tag"
        )
    return keccak(bytes(encoded))


class MerkleTree:
    """A Merkle tree built once (O(n) hashing) from which many proofs are read (O(log n)).

    Layout and hashing are described in the module docstring (OpenZeppelin
    ``makeMerkleTree``, leaves in the given order, sorted-pair keccak256).

    Args:
        leaves: 32-byte leaf hashes in tree order (may be empty).

    Raises:
        CryptoError: a leaf is not exactly 32 bytes (the message names its index).
    """

    __slots__ = ("_nodes", "_n")

    def __init__(self, leaves: Sequence[bytes]) -> None:
        n = len(leaves)
        nodes: list[bytes] = [EMPTY_ROOT] * (2 * n - 1 if n else 0)
        last = 2 * n - 2
        for k, leaf in enumerate(leaves):
            nodes[last - k] = _check_node(leaf, f"leaf {k}")
        for i in range(n - 2, -1, -1):
            a = nodes[2 * i + 1]
            b = nodes[2 * i + 2]
            nodes[i] = keccak(a + b if a < b else b + a)
        self._nodes = nodes
        self._n = n

    def __len__(self) -> int:
        """Number of leaves."""
        return self._n

    def __repr__(self) -> str:
        return f"MerkleTree(leaves={self._n}, root=0x{self.root.hex()})"

    @property
    def root(self) -> bytes:
        """The 32-byte root (:data:`EMPTY_ROOT` for an empty tree)."""
        return self._nodes[0] if self._n else EMPTY_ROOT

    def leaf(self, index: int) -> bytes:
        """Return leaf ``index`` (0-based, tree order).

        Raises:
            CryptoError: ``index`` is out of range.
        """
        return self._nodes[self._leaf_pos(index)]

    def proof(self, index: int) -> list[bytes]:
        """Return the inclusion proof of leaf ``index``: sibling nodes, leaf to root.

        The list is what OpenZeppelin's ``MerkleProof.verify(proof, root, leaf)`` takes
        as ``bytes32[] proof``.

        Raises:
            CryptoError: ``index`` is out of range (or the tree is empty).
        """
        pos = self._leaf_pos(index)
        nodes = self._nodes
        out: list[bytes] = []
        while pos > 0:
            out.append(nodes[pos + 1 if pos % 2 else pos - 1])
            pos = (pos - 1) // 2
        return out

    def _leaf_pos(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise CryptoError(f"merkle: leaf index must be an int, got {type(index).__name__}")
        if not 0 <= index < self._n:
            raise CryptoError(f"merkle: leaf index {index} out of range for {self._n} leaves")
        return 2 * self._n - 2 - index


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle root of ``leaves`` (32 bytes; :data:`EMPTY_ROOT` if empty).

    Raises:
        CryptoError: a leaf is not exactly 32 bytes.
    """
    return MerkleTree(leaves).root


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the proof of ``leaves[index]``; build a :class:`MerkleTree` for many proofs.

    Raises:
        CryptoError: a leaf is not 32 bytes, or ``index`` is out of range.
    """
    return MerkleTree(leaves).proof(index)


def process_proof(proof: Sequence[bytes], leaf: bytes) -> bytes:
    """Return the root implied by ``leaf`` and ``proof`` (OpenZeppelin ``processProof``).

    Raises:
        CryptoError: the leaf or a proof node is not exactly 32 bytes.
    """
    computed = _check_node(leaf, "leaf")
    for i, node in enumerate(proof):
        computed = _hash_pair(computed, _check_node(node, f"proof[{i}]"))
    return computed


def verify_proof(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """Return True iff ``leaf`` is proved in ``root`` by ``proof``.

    Same algorithm and result as OpenZeppelin 5 ``MerkleProof.verify(proof, root, leaf)``.

    Raises:
        CryptoError: ``root``, ``leaf`` or a proof node is not exactly 32 bytes.
    """
    expected = _check_node(root, "root")
    return process_proof(proof, leaf) == expected
