"""Clique signer-set snapshots as EIP-225 defines them: genesis, votes, epochs, turns.

Source: EIP-225 (https://eips.ethereum.org/EIPS/eip-225) and its reference
implementation, go-ethereum ``consensus/clique/snapshot.go`` (``Snapshot.apply``) and
``clique.go`` (``verifyHeader``, ``verifyCascadingFields``, ``verifySeal``), whose
behaviour is followed rule by rule:

* The **genesis** block carries no seal; its ``extraData`` is ``vanity(32) ‖
  signers(20·N) ‖ 65 zero bytes`` and gives the initial signer set.
* An **epoch checkpoint** (``number % epoch == 0``) resets all votes and states the full
  signer list in ``extraData`` (sorted ascending); it must equal the tracked set.
  Its coinbase must be zero and its nonce ``0x00..00``. Other blocks carry no list
  (``extraData`` exactly 97 bytes).
* A **vote**: a block's coinbase names the candidate, its nonce ``0xff..ff`` authorizes,
  ``0x00..00`` drops (any other nonce is invalid). Only a vote that would change the
  candidate's status counts; a signer holds one vote per candidate (a later vote on the
  same candidate replaces the earlier one); a candidate whose tally exceeds half of the
  current signers (strict majority) is added or removed, and every vote on it (and, for a
  dropped signer, every vote it cast) is discarded.
* **Recent signers**: with ``N`` signers, a signer seals at most one of any
  ``floor(N/2)+1`` consecutive blocks.
* **Difficulty** 2 when the signer is in turn (``sorted(signers)[number % N]``), else 1;
  ``mixHash`` zero; no uncles; ``timestamp >= parent.timestamp + period``.

Unlike geth, which rejects a block that breaks a rule, a follower must keep going: the
node served the block, so :meth:`CliqueSnapshot.apply` returns the next snapshot *and*
the list of rules the block broke, each a :class:`Violation` naming the block, the rule
and the signer. The snapshot follows the chain as served: the effects of a block sealed
by an authorized signer (its recent-signer slot, its vote) are applied even if it broke
a rule such as the difficulty; a block whose seal cannot be recovered, or whose signer
is not authorized, changes nothing but the position. A checkpoint whose list disagrees
with the tracked set is reported and then adopted (the chain's word wins, so tracking
heals; the alarm stays).

A :class:`CliqueSnapshot` is immutable and serializes to canonical JSON
(:meth:`CliqueSnapshot.to_bytes` / :meth:`CliqueSnapshot.from_bytes`), so a store can
keep one per block and, on a reorg to fork point ``F``, resume from the snapshot stored
for ``F``. Each snapshot also records what its own block did: the sealer, whether it was
in turn, and the :class:`SignerChange` records (a vote that passed, a checkpoint that
replaced the set), which an auditor needs to see who was allowed to seal, and when.

Headers are JSON-RPC block mappings (``0x`` hex strings; ints and bytes accepted too),
as for :mod:`edge.chain.poa`, whose seal recovery this module uses. Addresses in
records are EIP-55 checksummed; internally they are lowercase ``0x`` hex (whose order
equals the byte order EIP-225 sorts by).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from eth_utils.address import to_checksum_address

from edge.chain.poa import block_hash, clique_signer
from edge.errors import SealError

__all__ = [
    "RULES",
    "Rule",
    "CliqueConfig",
    "CliqueVote",
    "Violation",
    "SignerChange",
    "CliqueSnapshot",
    "SnapshotError",
    "BlockVerdict",
    "signers_from_extra",
    "check_expected",
    "follow",
]

VANITY: Final = 32
SEAL: Final = 65
ADDRESS: Final = 20
NONCE_AUTH: Final = b"\xff" * 8
NONCE_DROP: Final = b"\x00" * 8
DIFF_IN_TURN: Final = 2
DIFF_NO_TURN: Final = 1
EMPTY_UNCLE_HASH: Final = bytes.fromhex(
    "1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
)  # keccak256(rlp([]))
_ZERO_ADDRESS: Final = "0x" + "00" * ADDRESS
_FORMAT: Final = 1

Rule = Literal[
    "genesis_layout",
    "malformed_header",
    "extra_data_layout",
    "bad_seal",
    "unauthorized_signer",
    "recently_signed",
    "wrong_difficulty",
    "timestamp_too_early",
    "checkpoint_signers_mismatch",
    "checkpoint_vote",
    "invalid_vote",
    "nonzero_mix_hash",
    "uncles",
    "expected_set_mismatch",
]
"""The name of a Clique rule a block can break (see :data:`RULES`)."""

RULES: Final[Mapping[str, str]] = {
    "genesis_layout": "genesis extraData is not vanity(32) + signers(20*N, N>=1) + 65 zero bytes",
    "malformed_header": "a header field needed by Clique is missing or malformed",
    "extra_data_layout": "extraData is not vanity(32) + [signers on checkpoints only] + seal(65)",
    "bad_seal": "the 65-byte seal does not recover to a public key",
    "unauthorized_signer": "the sealer is not in the current signer set",
    "recently_signed": "the sealer sealed one of the last floor(N/2) blocks",
    "wrong_difficulty": "difficulty must be 2 in turn and 1 out of turn",
    "timestamp_too_early": "timestamp is below parent timestamp + period",
    "checkpoint_signers_mismatch": "the checkpoint's signer list differs from the tracked set",
    "checkpoint_vote": "a checkpoint block must have coinbase 0 and nonce 0x00..00",
    "invalid_vote": "nonce must be 0xff..ff (authorize) or 0x00..00 (drop)",
    "nonzero_mix_hash": "mixHash must be zero",
    "uncles": "a Clique block has no uncles",
    "expected_set_mismatch": "the chain's signer set differs from the configured poa.authorities",
}
"""Each rule name with the EIP-225 requirement it stands for (one line, for alarms)."""


class SnapshotError(SealError):
    """A snapshot was asked to apply a header that is not its child, or could not be read.

    Not a chain fault: the caller passed the wrong snapshot (it must be the one stored
    for the header's parent) or a corrupt serialized snapshot.
    """


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class CliqueConfig:
    """The Clique parameters of a chain (geth genesis ``config.clique``).

    Attributes:
        period: minimum seconds between a block and its parent (EIP-225 ``BLOCK_PERIOD``).
        epoch: blocks between checkpoints that reset votes (EIP-225 ``EPOCH_LENGTH``,
            default 30000).

    Raises:
        ValueError: a negative period or an epoch below 1.
    """

    period: int = 0
    epoch: int = 30000

    def __post_init__(self) -> None:
        if self.period < 0:
            raise ValueError(f"Clique period must be >= 0 s, got {self.period}")
        if self.epoch < 1:
            raise ValueError(f"Clique epoch must be >= 1 block, got {self.epoch}")


@dataclass(frozen=True, slots=True)
class CliqueVote:
    """One standing vote: ``signer`` voted at ``block`` to authorize/drop ``address``.

    Addresses are lowercase ``0x`` hex.
    """

    signer: str
    address: str
    authorize: bool
    block: int


@dataclass(frozen=True, slots=True)
class Violation:
    """A Clique rule broken by one block: the alarm record.

    Attributes:
        block: block number. block_hash: its 32-byte hash.
        rule: which rule (a key of :data:`RULES`).
        signer: EIP-55 address of the sealer, or None when it could not be recovered
            (genesis, short extraData, bad seal).
        detail: one line saying what was expected and what was found.
    """

    block: int
    block_hash: bytes
    rule: Rule
    signer: str | None
    detail: str

    def __str__(self) -> str:
        who = self.signer or "unknown signer"
        return f"block {self.block}: {self.rule} ({who}): {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"block", "block_hash" (0x hex), "rule", "signer", "detail"}``."""
        return {"block": self.block, "block_hash": "0x" + self.block_hash.hex(), "rule": self.rule,
                "signer": self.signer, "detail": self.detail}


SignerChangeKind = Literal["genesis", "authorized", "dropped", "checkpoint", "start"]


@dataclass(frozen=True, slots=True)
class SignerChange:
    """A change of the signer set at one block (what an auditor needs to see).

    Attributes:
        block, block_hash: the block at which the set changed (it applies from the next
            block on).
        kind: ``"genesis"`` (initial set), ``"authorized"``/``"dropped"`` (a vote passed),
            ``"checkpoint"`` (a checkpoint list replaced a different tracked set),
            ``"start"`` (tracking started from a trusted set at a later block).
        address: the signer added or dropped (EIP-55), None for genesis/checkpoint/start.
        votes: signers whose votes passed it (EIP-55, vote order); empty otherwise.
        signers: the full set after the change, sorted (EIP-55).
    """

    block: int
    block_hash: bytes
    kind: SignerChangeKind
    address: str | None
    votes: tuple[str, ...]
    signers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (hash as 0x hex, tuples as lists)."""
        return {"block": self.block, "block_hash": "0x" + self.block_hash.hex(), "kind": self.kind,
                "address": self.address, "votes": list(self.votes), "signers": list(self.signers)}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> SignerChange:
        """Inverse of :meth:`to_dict`. Raises KeyError/ValueError/TypeError on a bad dict."""
        return SignerChange(int(d["block"]), bytes.fromhex(str(d["block_hash"])[2:]), d["kind"],
                            d["address"], tuple(d["votes"]), tuple(d["signers"]))


# --------------------------------------------------------------------------- parsing


def _int(header: Mapping[str, Any], key: str) -> int:
    v = header.get(key)
    if isinstance(v, bool):
        raise SealError(f"header field {key!r} is malformed: bool")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v[:2] in ("0x", "0X"):
        try:
            return int(v[2:] or "0", 16)
        except ValueError:
            pass
    raise SealError(f"header field {key!r} is missing or not a quantity: {str(v)[:20]!r}")


def _bytes(header: Mapping[str, Any], key: str, size: int | None = None) -> bytes:
    v = header.get(key)
    out: bytes | None = None
    if isinstance(v, (bytes, bytearray, memoryview)):
        out = bytes(v)
    elif isinstance(v, str) and v[:2] in ("0x", "0X"):
        try:
            out = bytes.fromhex(v[2:])
        except ValueError:
            out = None
    if out is None:
        raise SealError(f"header field {key!r} is missing or not hex data: {str(v)[:20]!r}")
    if size is not None and len(out) != size:
        raise SealError(f"header field {key!r} is {len(out)} bytes, expected {size}")
    return out


def _hash_of(header: Mapping[str, Any]) -> bytes:
    """The stated ``hash`` when present (what the node linked by), else the computed one."""
    if header.get("hash") is not None:
        return _bytes(header, "hash", 32)
    return block_hash(header)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _cs(addr: str) -> str:
    return str(to_checksum_address(addr))


def signers_from_extra(extra: bytes) -> tuple[str, ...]:
    """The signer list of a genesis or checkpoint ``extraData`` (EIP-225), in stated order.

    Args:
        extra: ``vanity(32) ‖ signers(20·N) ‖ seal(65)``.

    Returns:
        the N addresses as lowercase ``0x`` hex (N may be 0).

    Raises:
        SealError: shorter than 97 bytes, or the middle is not a multiple of 20 bytes.
    """
    if len(extra) < VANITY + SEAL:
        raise SealError(f"extraData is {len(extra)} bytes, needs at least {VANITY + SEAL} (32 vanity + 65 seal)")
    body = extra[VANITY:-SEAL]
    if len(body) % ADDRESS:
        raise SealError(f"extraData signer list is {len(body)} bytes, not a multiple of {ADDRESS}")
    return tuple(_hex(body[i:i + ADDRESS]) for i in range(0, len(body), ADDRESS))


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, slots=True)
class CliqueSnapshot:
    """The Clique state after one block: who may seal the next block (EIP-225).

    Build one with :meth:`genesis` (from block 0) or :meth:`start` (a trusted set at a
    later block), then :meth:`apply` each child header in order.

    Attributes:
        config: the chain's :class:`CliqueConfig`.
        number, hash, timestamp: the block this snapshot is after.
        signers: the authorized signers, sorted, lowercase ``0x`` hex.
        recents: ``(block, signer)`` of the latest blocks, for the recent-signer rule.
        votes: the standing votes, in the order they were cast.
        sealer: EIP-55 sealer of block ``number`` (None: genesis, or not recoverable).
        in_turn: whether that sealer was in turn (None when not computable).
        changes: signer-set changes made by block ``number``.
    """

    config: CliqueConfig
    number: int
    hash: bytes
    timestamp: int
    signers: tuple[str, ...]
    recents: tuple[tuple[int, str], ...] = ()
    votes: tuple[CliqueVote, ...] = ()
    sealer: str | None = None
    in_turn: bool | None = None
    changes: tuple[SignerChange, ...] = field(default=())

    # -- construction ---------------------------------------------------------------

    @classmethod
    def genesis(cls, header: Mapping[str, Any], config: CliqueConfig) -> tuple[CliqueSnapshot, list[Violation]]:
        """The snapshot after the genesis block: its extraData gives the initial set.

        Args:
            header: block 0 as a JSON-RPC mapping.
            config: the chain's Clique parameters.

        Returns:
            ``(snapshot, violations)``; a genesis whose extraData is not a Clique signer
            list yields an empty set and a ``genesis_layout`` violation (every later block
            is then reported as unauthorized: loud, never a stall).

        Raises:
            SnapshotError: the header is not block 0, or its number/hash are unreadable.
        """
        number, bhash = cls._ident(header)
        if number != 0:
            raise SnapshotError(f"block {number} is not a genesis block")
        timestamp = cls._timestamp_or_zero(header)
        violations: list[Violation] = []
        signers: tuple[str, ...] = ()
        try:
            extra = _bytes(header, "extraData")
            signers = signers_from_extra(extra)
            if not signers:
                raise SealError("the signer list is empty")
            if extra[-SEAL:] != bytes(SEAL):
                raise SealError("the 65 seal bytes are not zero")
            if len(set(signers)) != len(signers):
                raise SealError("the signer list repeats an address")
        except SealError as e:
            violations.append(Violation(0, bhash, "genesis_layout", None, f"{e}: {RULES['genesis_layout']}"))
            signers = tuple(dict.fromkeys(signers))
        ordered = tuple(sorted(signers))
        change = SignerChange(0, bhash, "genesis", None, (), tuple(_cs(s) for s in ordered))
        return cls(config, 0, bhash, timestamp, ordered, changes=(change,)), violations

    @classmethod
    def start(cls, header: Mapping[str, Any], signers: Iterable[str], config: CliqueConfig) -> CliqueSnapshot:
        """A snapshot after ``header`` with a trusted signer set (tracking from mid-chain).

        For ``ingest.start_block > 0``: take the set from a checkpoint header
        (:func:`signers_from_extra`) or from ``poa.authorities``. Recent signers and votes
        before ``header`` are unknown, so the first ``floor(N/2)`` blocks cannot break the
        recent-signer rule, and votes count from here (as geth does from a trusted
        checkpoint).

        Raises:
            SnapshotError: number/hash unreadable, or a signer is not a 20-byte 0x address.
        """
        number, bhash = cls._ident(header)
        lower: list[str] = []
        for s in signers:
            if not isinstance(s, str) or len(s) != 42 or s[:2] != "0x":
                raise SnapshotError(f"not a 20-byte 0x address: {s!r}")
            try:
                bytes.fromhex(s[2:])
            except ValueError as e:
                raise SnapshotError(f"not a 20-byte 0x address: {s!r}") from e
            lower.append(s.lower())
        ordered = tuple(sorted(set(lower)))
        change = SignerChange(number, bhash, "start", None, (), tuple(_cs(s) for s in ordered))
        return cls(config, number, bhash, cls._timestamp_or_zero(header), ordered, changes=(change,))

    @staticmethod
    def _ident(header: Mapping[str, Any]) -> tuple[int, bytes]:
        if not isinstance(header, Mapping):
            raise SnapshotError(f"header must be a mapping, got {type(header).__name__}")
        try:
            return _int(header, "number"), _hash_of(header)
        except SealError as e:
            raise SnapshotError(f"cannot identify the block: {e}") from e

    @staticmethod
    def _timestamp_or_zero(header: Mapping[str, Any]) -> int:
        try:
            return _int(header, "timestamp")
        except SealError:
            return 0

    # -- queries --------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """``floor(N/2) + 1``: a signer seals at most one of this many consecutive blocks."""
        return len(self.signers) // 2 + 1

    def in_turn_signer(self, number: int) -> str | None:
        """EIP-55 address in turn for block ``number`` (``sorted(signers)[number % N]``); None if N = 0."""
        if not self.signers:
            return None
        return _cs(self.signers[number % len(self.signers)])

    def is_signer(self, address: str) -> bool:
        """Whether ``address`` (any case) is in the signer set."""
        return address.lower() in self.signers

    def tally(self) -> dict[str, tuple[bool, int]]:
        """Standing votes per candidate: ``{address: (authorize, count)}`` (lowercase hex)."""
        out: dict[str, tuple[bool, int]] = {}
        for v in self.votes:
            auth, n = out.get(v.address, (v.authorize, 0))
            out[v.address] = (auth, n + 1)
        return out

    def checksummed(self) -> tuple[str, ...]:
        """The signer set, sorted, EIP-55."""
        return tuple(_cs(s) for s in self.signers)

    # -- the state transition --------------------------------------------------------

    def apply(self, header: Mapping[str, Any]) -> tuple[CliqueSnapshot, list[Violation]]:
        """Apply the child block ``header``: the next snapshot and the rules it broke.

        Follows geth ``Snapshot.apply`` plus the header checks of ``verifyHeader``,
        ``verifyCascadingFields`` and ``verifySeal`` (see the module doc for what a
        violation changes). Never raises for a chain fault.

        Args:
            header: block ``self.number + 1`` whose ``parentHash`` is ``self.hash``.

        Returns:
            ``(snapshot after header, violations)``, violations in rule order.

        Raises:
            SnapshotError: ``header`` is not this snapshot's child (wrong number or
                parentHash), or its number/hash/parentHash are unreadable.
        """
        number, bhash = self._ident(header)
        try:
            parent = _bytes(header, "parentHash", 32)
        except SealError as e:
            raise SnapshotError(f"block {number}: {e}") from e
        if number != self.number + 1 or parent != self.hash:
            raise SnapshotError(
                f"block {number} (parent {_hex(parent)}) is not the child of the snapshot at "
                f"block {self.number} ({_hex(self.hash)}): apply it to its parent's snapshot"
            )
        out: list[Violation] = []
        # the seal first (verifySeal), so that every violation can name the sealer
        signer: str | None = None
        seal_error: str | None = None
        try:
            signer = clique_signer(header).lower()
        except SealError as e:
            seal_error = str(e)
        cs = _cs(signer) if signer else None

        def bad(rule: Rule, detail: str) -> None:
            out.append(Violation(number, bhash, rule, cs, detail))

        checkpoint = number % self.config.epoch == 0
        # the fields Clique reads; an unreadable one is reported and read as neutral
        fields: dict[str, Any] = {}
        for key, kind, size, default in (("extraData", "b", None, b""), ("miner", "b", ADDRESS, bytes(ADDRESS)),
                                         ("nonce", "b", 8, NONCE_DROP), ("mixHash", "b", 32, bytes(32)),
                                         ("sha3Uncles", "b", 32, EMPTY_UNCLE_HASH), ("difficulty", "i", None, 0),
                                         ("timestamp", "i", None, self.timestamp + self.config.period)):
            try:
                fields[key] = _int(header, key) if kind == "i" else _bytes(header, key, size)
            except SealError as e:
                bad("malformed_header", str(e))
                fields[key] = default
        extra: bytes = fields["extraData"]
        coinbase = _hex(fields["miner"])
        nonce: bytes = fields["nonce"]
        difficulty: int = fields["difficulty"]
        timestamp: int = fields["timestamp"]

        # header layout (verifyHeader, verifyCascadingFields)
        stated: tuple[str, ...] | None = None
        if len(extra) < VANITY + SEAL:
            bad("extra_data_layout", f"extraData is {len(extra)} bytes, needs at least {VANITY + SEAL}")
        elif checkpoint:
            try:
                stated = signers_from_extra(extra)
            except SealError as e:
                bad("extra_data_layout", f"checkpoint {e}")
        elif len(extra) != VANITY + SEAL:
            bad("extra_data_layout",
                f"extraData is {len(extra)} bytes; a non-checkpoint block carries exactly {VANITY + SEAL}")
        if seal_error is not None and len(extra) >= VANITY + SEAL:
            bad("bad_seal", seal_error)
        if checkpoint and (coinbase != _ZERO_ADDRESS or nonce != NONCE_DROP):
            bad("checkpoint_vote", f"checkpoint has coinbase {coinbase} and nonce 0x{nonce.hex()}")
        elif nonce not in (NONCE_AUTH, NONCE_DROP):
            bad("invalid_vote", f"nonce is 0x{nonce.hex()}")
        if fields["mixHash"] != bytes(32):
            bad("nonzero_mix_hash", f"mixHash is 0x{fields['mixHash'].hex()}")
        if fields["sha3Uncles"] != EMPTY_UNCLE_HASH:
            bad("uncles", f"sha3Uncles is 0x{fields['sha3Uncles'].hex()}, not the empty list's hash")
        if timestamp < self.timestamp + self.config.period:
            bad("timestamp_too_early", f"timestamp {timestamp} < parent {self.timestamp} + period {self.config.period}")

        # the snapshot transition (Snapshot.apply)
        votes = () if checkpoint else self.votes
        limit = self.limit
        recents = tuple(r for r in self.recents if r[0] > number - limit)
        signers = self.signers
        changes: list[SignerChange] = []
        in_turn: bool | None = None
        if signer is not None:
            if signer not in signers:
                bad("unauthorized_signer", f"{cs} is not one of {len(signers)} signers")
            else:
                in_turn = signers[number % len(signers)] == signer
                want = DIFF_IN_TURN if in_turn else DIFF_NO_TURN
                if difficulty != want:
                    turn = "in turn" if in_turn else f"out of turn ({self.in_turn_signer(number)} is in turn)"
                    bad("wrong_difficulty", f"difficulty {difficulty}, but the sealer is {turn}: want {want}")
                last = [n for n, s in recents if s == signer]
                if last:
                    bad("recently_signed",
                        f"{cs} also sealed block {last[-1]}; with {len(signers)} signers a signer may "
                        f"seal one of any {limit} consecutive blocks")
                recents = (*recents, (number, signer))
                if not checkpoint and nonce in (NONCE_AUTH, NONCE_DROP):
                    signers, votes, recents, change = _vote(signers, votes, recents, signer, coinbase,
                                                            nonce == NONCE_AUTH, number, bhash)
                    if change is not None:
                        changes.append(change)
        if checkpoint and stated is not None:
            if tuple(sorted(stated)) != signers or list(stated) != sorted(stated):
                bad("checkpoint_signers_mismatch",
                    f"checkpoint lists {[_cs(s) for s in stated]}, tracked set is {[_cs(s) for s in signers]}")
                if stated and tuple(sorted(set(stated))) != signers:
                    signers = tuple(sorted(set(stated)))
                    recents = tuple(r for r in recents if r[0] > number - (len(signers) // 2 + 1))
                    changes.append(SignerChange(number, bhash, "checkpoint", None, (), tuple(_cs(s) for s in signers)))
        out.sort(key=lambda v: list(RULES).index(v.rule))
        nxt = CliqueSnapshot(self.config, number, bhash, timestamp, signers, recents, votes, cs, in_turn,
                             tuple(changes))
        return nxt, out

    # -- serialization ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (format version ``"v": 1``; hashes as 0x hex)."""
        return {
            "v": _FORMAT,
            "period": self.config.period,
            "epoch": self.config.epoch,
            "number": self.number,
            "hash": _hex(self.hash),
            "timestamp": self.timestamp,
            "signers": list(self.signers),
            "recents": [[n, s] for n, s in self.recents],
            "votes": [[v.signer, v.address, v.authorize, v.block] for v in self.votes],
            "sealer": self.sealer,
            "in_turn": self.in_turn,
            "changes": [c.to_dict() for c in self.changes],
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal snapshots give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_bytes(self) -> bytes:
        """:meth:`to_json` as UTF-8 (for a BLOB column)."""
        return self.to_json().encode()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CliqueSnapshot:
        """Inverse of :meth:`to_dict`. Raises SnapshotError on an unknown format or bad field."""
        try:
            if d.get("v") != _FORMAT:
                raise SnapshotError(f"unknown Clique snapshot format {d.get('v')!r} (this agent reads {_FORMAT})")
            return cls(
                CliqueConfig(int(d["period"]), int(d["epoch"])),
                int(d["number"]),
                bytes.fromhex(str(d["hash"])[2:]),
                int(d["timestamp"]),
                tuple(str(s) for s in d["signers"]),
                tuple((int(n), str(s)) for n, s in d["recents"]),
                tuple(CliqueVote(str(s), str(a), bool(au), int(b)) for s, a, au, b in d["votes"]),
                d["sealer"],
                d["in_turn"],
                tuple(SignerChange.from_dict(c) for c in d["changes"]),
            )
        except SnapshotError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SnapshotError(f"corrupt Clique snapshot: {type(e).__name__}: {e}") from e

    @classmethod
    def from_json(cls, text: str | bytes) -> CliqueSnapshot:
        """Inverse of :meth:`to_json` / :meth:`to_bytes`. Raises SnapshotError if unreadable."""
        try:
            d = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise SnapshotError(f"corrupt Clique snapshot: {e}") from e
        if not isinstance(d, dict):
            raise SnapshotError("corrupt Clique snapshot: not a JSON object")
        return cls.from_dict(d)

    from_bytes = from_json


def _vote(
    signers: tuple[str, ...],
    votes: tuple[CliqueVote, ...],
    recents: tuple[tuple[int, str], ...],
    signer: str,
    candidate: str,
    authorize: bool,
    number: int,
    bhash: bytes,
) -> tuple[tuple[str, ...], tuple[CliqueVote, ...], tuple[tuple[int, str], ...], SignerChange | None]:
    """Cast ``signer``'s vote on ``candidate`` and pass it if a strict majority agrees (geth)."""
    # a signer's earlier vote on the same candidate is replaced
    kept = [v for v in votes if not (v.signer == signer and v.address == candidate)]
    is_signer = candidate in signers
    if authorize != is_signer:  # only a vote that would change the candidate's status counts
        kept.append(CliqueVote(signer, candidate, authorize, number))
    on_it = [v for v in kept if v.address == candidate]
    if len(on_it) <= len(signers) // 2:
        return signers, tuple(kept), recents, None
    voters = tuple(_cs(v.signer) for v in on_it)
    if authorize:
        new = tuple(sorted((*signers, candidate)))
    else:
        new = tuple(s for s in signers if s != candidate)
        limit = len(new) // 2 + 1
        recents = tuple(r for r in recents if r[0] > number - limit)
        kept = [v for v in kept if v.signer != candidate]  # the dropped signer's votes go
    kept = [v for v in kept if v.address != candidate]
    change = SignerChange(number, bhash, "authorized" if authorize else "dropped", _cs(candidate), voters,
                          tuple(_cs(s) for s in new))
    return new, tuple(kept), recents, change


def check_expected(snapshot: CliqueSnapshot, expected: Sequence[str]) -> Violation | None:
    """Compare the chain's signer set with the configured ``poa.authorities``.

    Call it after the genesis/start snapshot and after every block whose snapshot has
    ``changes``. Returns an ``expected_set_mismatch`` violation naming the differences,
    or None when the sets agree (or ``expected`` is empty: follow the chain's set).
    """
    if not expected:
        return None
    want = {a.lower() for a in expected}
    have = set(snapshot.signers)
    if want == have:
        return None
    extra = sorted(have - want)
    missing = sorted(want - have)
    detail = (f"chain has {[_cs(a) for a in extra]} not in poa.authorities; poa.authorities has "
              f"{[_cs(a) for a in missing]} not on the chain")
    return Violation(snapshot.number, snapshot.hash, "expected_set_mismatch", snapshot.sealer, detail)



@dataclass(frozen=True, slots=True)
class BlockVerdict:
    """What the Clique rules say about one block: the row an ingest stage stores with it.

    Attributes:
        number, hash: the block.
        sealer: EIP-55 sealer (None: genesis, or no recoverable seal).
        authorized: the sealer was in the signer set at its block (False also when no
            sealer could be recovered; None for the genesis).
        in_turn: it was the in-turn sealer (None when not computable).
        violations: the rules the block broke (each an alarm), plus an
            ``expected_set_mismatch`` when the set differs from ``poa.authorities``.
        changes: signer-set changes the block made (genesis included).
        snapshot: the serialized snapshot after the block (:meth:`CliqueSnapshot.to_bytes`).
    """

    number: int
    hash: bytes
    sealer: str | None
    authorized: bool | None
    in_turn: bool | None
    violations: tuple[Violation, ...]
    changes: tuple[SignerChange, ...]
    snapshot: bytes


def follow(
    snapshot: CliqueSnapshot | None,
    headers: Iterable[Mapping[str, Any]],
    config: CliqueConfig,
    expected: Sequence[str] = (),
) -> tuple[CliqueSnapshot | None, list[BlockVerdict]]:
    """Apply consecutive headers to ``snapshot``: one :class:`BlockVerdict` per block.

    The whole Clique step of an ingest batch: with ``snapshot`` None the first header must
    be the genesis (block 0), which gives the initial set; otherwise it must be the child
    of ``snapshot`` (the one stored for the parent; after a reorg, the one stored for the
    fork point). ``expected`` (``poa.authorities``) is compared with the set at the
    genesis and after every change (:func:`check_expected`); empty = follow the chain.

    Returns:
        ``(last snapshot, verdicts)``; the snapshot is None only if ``headers`` was empty
        and ``snapshot`` None.

    Raises:
        SnapshotError: a header that is not the child of the previous one, or a first
            header that is neither the genesis (without a snapshot) nor the snapshot's child.
    """
    out: list[BlockVerdict] = []
    for header in headers:
        if snapshot is None:
            snapshot, vs = CliqueSnapshot.genesis(header, config)
            authorized: bool | None = None
        else:
            snapshot, vs = snapshot.apply(header)
            authorized = snapshot.sealer is not None and not any(v.rule == "unauthorized_signer" for v in vs)
        if snapshot.changes:
            mismatch = check_expected(snapshot, expected)
            if mismatch is not None:
                vs.append(mismatch)
        out.append(BlockVerdict(snapshot.number, snapshot.hash, snapshot.sealer, authorized, snapshot.in_turn,
                                tuple(vs), snapshot.changes, snapshot.to_bytes()))
    return snapshot, out
