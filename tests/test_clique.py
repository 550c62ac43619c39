"""EIP-225 Clique snapshots (edge.chain.clique) on headers signed here with known keys,
and on the real Goerli/Rinkeby fixtures (../shared/data/poa_headers, relative to the repo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.chain.clique import (
    RULES,
    CliqueConfig,
    CliqueSnapshot,
    SnapshotError,
    Violation,
    check_expected,
    signers_from_extra,
)
from edge.chain.poa import SealChecker
from tests.clique_headers import ADDRS, KEYS, Header, Sealer, extra_data, finish, genesis

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "poa_headers"
A, B, C, D, E = sorted(ADDRS[:5], key=str.lower)
STRANGER = ADDRS[5]


def _rules(vs: list[Violation]) -> list[str]:
    return [v.rule for v in vs]


def _run(snap: CliqueSnapshot, headers: list[Header]) -> tuple[CliqueSnapshot, list[Violation]]:
    allv: list[Violation] = []
    for h in headers:
        snap, vs = snap.apply(h)
        allv += vs
    return snap, allv


def _start(signers: list[str], period: int = 1, epoch: int = 30000) -> tuple[Header, CliqueSnapshot, Sealer]:
    g = genesis(signers)
    snap, vs = CliqueSnapshot.genesis(g, CliqueConfig(period, epoch))
    assert vs == []
    return g, snap, Sealer(list(signers), period, epoch)


# ------------------------------------------------------------------ genesis and turns


def test_genesis_defines_the_set_and_seal_checker_does_not_stall() -> None:
    g, snap, _ = _start([C, A, B])
    assert snap.signers == tuple(sorted(s.lower() for s in (A, B, C)))
    assert snap.checksummed() == (A, B, C)
    assert (snap.number, snap.hash.hex(), snap.sealer) == (0, g["hash"][2:], None)
    [change] = snap.changes
    assert (change.kind, change.block, change.signers) == ("genesis", 0, (A, B, C))
    # the old poa checker stalled here ("not a valid secp256k1 signature"); no longer
    for engine in ("auto", "clique"):
        res = SealChecker(engine, [A, B, C]).check(g)
        assert (res.engine, res.signer, res.authorized, res.number) == ("clique", None, None, 0)
        assert "genesis" in res.reason and "3 signer" in res.reason
    assert SealChecker("aura").check(g).signer is None


def test_bad_genesis_is_an_alarm_not_a_stall() -> None:
    g = genesis([A])
    g["extraData"] = "0x" + extra_data([A])[:-1].hex()  # 96 + 20 - ... not a signer list
    snap, vs = CliqueSnapshot.genesis(finish(g, None), CliqueConfig(1))
    assert _rules(vs) == ["genesis_layout"] and snap.signers == ()
    child = Sealer([A]).child(g, A)
    snap2, vs2 = snap.apply(child)
    assert _rules(vs2) == ["unauthorized_signer"] and vs2[0].signer == A
    with pytest.raises(SnapshotError, match="not a genesis"):
        CliqueSnapshot.genesis(child, CliqueConfig())


def test_in_and_out_of_turn_blocks_are_clean() -> None:
    g, snap, s = _start([A, B, C])
    chain = [g]
    for n in range(1, 7):
        signer = sorted([A, B, C], key=str.lower)[n % 3]
        chain.append(s.child(chain[-1], signer))
    # an out-of-turn block (difficulty 1) by a signer that is not recent: still valid
    chain.append(s.child(chain[-1], sorted([A, B, C], key=str.lower)[(7 + 1) % 3]))
    turns = []
    for h in chain[1:]:
        snap, vs = snap.apply(h)
        assert vs == [], vs
        turns.append(snap.in_turn)
    assert turns == [True] * 6 + [False]
    assert snap.sealer == sorted([A, B, C], key=str.lower)[8 % 3]
    assert snap.in_turn_signer(8) == sorted([A, B, C], key=str.lower)[8 % 3]


# ------------------------------------------------------------------ votes


def test_votes_add_a_signer_by_strict_majority() -> None:
    g, snap, s = _start([A, B, C])
    h1 = s.child(g, A, vote=(D, True))
    snap, vs = snap.apply(h1)
    assert vs == [] and not snap.is_signer(D) and snap.tally() == {D.lower(): (True, 1)}
    h2 = s.child(h1, B, vote=(D, True))  # 2 of 3 > 3/2: passes
    snap, vs = snap.apply(h2)
    assert vs == [] and snap.is_signer(D) and snap.tally() == {}
    [change] = snap.changes
    assert (change.kind, change.address, change.votes, change.block) == ("authorized", D, (A, B), 2)
    assert change.signers == tuple(sorted([A, B, C, D], key=str.lower))
    # D now seals; 4 signers: in turn is sorted[n % 4]
    s.signers.append(D)
    h3 = s.child(h2, D)
    snap, vs = snap.apply(h3)
    assert vs == [] and snap.sealer == D and snap.in_turn is (sorted([A, B, C, D], key=str.lower)[3] == D)


def test_votes_drop_a_signer_and_its_votes_go() -> None:
    g, snap, s = _start([A, B, C])
    h1 = s.child(g, C, vote=(E, True))  # C's own vote, discarded when C is dropped
    h2 = s.child(h1, A, vote=(C, False))
    h3 = s.child(h2, B, vote=(C, False))  # 2 of 3: C is dropped
    snap, vs = _run(snap, [h1, h2, h3])
    assert vs == [] and snap.signers == tuple(sorted([A.lower(), B.lower()]))
    assert snap.tally() == {}  # C's vote for E went with C
    assert [(c.kind, c.address, c.votes) for c in snap.changes] == [("dropped", C, (A, B))]
    s.signers.remove(C)
    h4 = s.child(h3, C)  # C is a stranger now
    after, vs = snap.apply(h4)
    assert _rules(vs) == ["unauthorized_signer"] and vs[0].signer == C and vs[0].block == 4
    assert after.signers == snap.signers and after.sealer == C


def test_a_later_vote_replaces_the_earlier_one() -> None:
    g, snap, s = _start([A, B, C])
    h1 = s.child(g, A, vote=(D, True))
    h2 = s.child(h1, C)
    h3 = s.child(h2, A, vote=(D, True))  # A again: still one vote for D
    snap, vs = _run(snap, [h1, h2, h3])
    assert vs == [] and not snap.is_signer(D)
    assert snap.tally() == {D.lower(): (True, 1)} and snap.votes[0].block == 3
    h4 = s.child(h3, B, vote=(D, True))
    snap, vs = snap.apply(h4)
    assert vs == [] and snap.is_signer(D)


def test_a_vote_that_changes_nothing_does_not_count() -> None:
    g, snap, s = _start([A, B, C])
    h1 = s.child(g, A, vote=(B, True))  # B is already a signer
    h2 = s.child(h1, B, vote=(D, False))  # D is not a signer
    snap, vs = _run(snap, [h1, h2])
    assert vs == [] and snap.tally() == {} and len(snap.signers) == 3


def test_epoch_checkpoint_resets_votes() -> None:
    g, snap, s = _start([A, B, C], epoch=3)
    h1 = s.child(g, A, vote=(D, True))
    h2 = s.child(h1, C)
    h3 = s.child(h2, B)  # checkpoint: lists A, B, C, clears votes
    h4 = s.child(h3, C, vote=(D, True))  # would pass with A's vote; A's vote is gone
    snap1, _ = snap.apply(h1)
    assert snap1.tally() == {D.lower(): (True, 1)}
    snap, vs = _run(snap, [h1, h2, h3])
    assert vs == [] and snap.votes == () and signers_from_extra(bytes.fromhex(h3["extraData"][2:])) == tuple(
        sorted(x.lower() for x in (A, B, C)))
    snap, vs = snap.apply(h4)
    assert vs == [] and not snap.is_signer(D) and snap.tally() == {D.lower(): (True, 1)}


def test_checkpoint_list_that_disagrees_is_an_alarm_and_is_adopted() -> None:
    g, snap, s = _start([A, B, C], epoch=2)
    h1 = s.child(g, B)
    h2 = s.child(h1, C, checkpoint=[A, C])  # B missing from the list
    snap, vs = _run(snap, [h1, h2])
    assert _rules(vs) == ["checkpoint_signers_mismatch"]
    assert vs[0].block == 2 and vs[0].signer == C and B in vs[0].detail
    assert snap.checksummed() == tuple(sorted([A, C], key=str.lower))
    assert [(c.kind, c.signers) for c in snap.changes] == [("checkpoint", snap.checksummed())]
    # a vote on a checkpoint is not allowed either
    g, snap, s = _start([A, B, C], epoch=1)
    bad = s.child(g, B, vote=(D, True))
    _, vs = snap.apply(bad)
    assert _rules(vs) == ["checkpoint_vote"] and vs[0].signer == B


# ------------------------------------------------------------------ seal rules


def test_recent_signer_violation_names_the_signer_and_goes_on() -> None:
    g, snap, s = _start([A, B, C])
    h1 = s.child(g, B)  # in turn at 1
    h2 = s.child(h1, B)  # again: one of any 2 consecutive blocks
    h3 = s.child(h2, A)  # fine: B's block 1 left the window... but block 2 stays
    h4 = s.child(h3, B)  # fine: window of 2 is blocks 3..4
    snap, vs = _run(snap, [h1, h2, h3, h4])
    assert [(v.block, v.rule, v.signer) for v in vs] == [(2, "recently_signed", B)]
    assert "block 1" in vs[0].detail
    assert snap.number == 4 and snap.sealer == B


def test_wrong_difficulty_both_ways() -> None:
    g, snap, s = _start([A, B, C])
    in_turn = sorted([A, B, C], key=str.lower)[1]
    out_turn = sorted([A, B, C], key=str.lower)[2]
    _, vs = snap.apply(s.child(g, in_turn, difficulty=1))
    assert [(v.rule, v.signer) for v in vs] == [("wrong_difficulty", in_turn)] and "want 2" in vs[0].detail
    _, vs = snap.apply(s.child(g, out_turn, difficulty=2))
    assert [(v.rule, v.signer) for v in vs] == [("wrong_difficulty", out_turn)] and "want 1" in vs[0].detail
    _, vs = snap.apply(s.child(g, out_turn, difficulty=3))
    assert _rules(vs) == ["wrong_difficulty"]


def test_strangers_seal_and_vote_do_not_count() -> None:
    g, snap, s = _start([A, B, C])
    h1 = s.child(g, STRANGER, vote=(D, True), difficulty=2, key=KEYS[5])
    after, vs = snap.apply(h1)
    assert [(v.rule, v.signer, v.block) for v in vs] == [("unauthorized_signer", STRANGER, 1)]
    assert after.tally() == {} and after.signers == snap.signers and after.recents == ()
    assert str(vs[0]).startswith(f"block 1: unauthorized_signer ({STRANGER})")
    res = SealChecker("clique", [A, B, C]).check(h1)
    assert (res.signer, res.authorized) == (STRANGER, False)


def test_timestamp_nonce_mix_and_layout_rules() -> None:
    g, snap, s = _start([A, B, C], period=5)
    signer = sorted([A, B, C], key=str.lower)[1]
    _, vs = snap.apply(s.child(g, signer, dt=4))
    assert _rules(vs) == ["timestamp_too_early"] and vs[0].signer == signer
    _, vs = snap.apply(s.child(g, signer, nonce=b"\x01" * 8))
    assert _rules(vs) == ["invalid_vote"]
    h = s.child(g, signer)
    h["mixHash"] = "0x" + "11" * 32
    _, vs = snap.apply(finish(h, KEYS[ADDRS.index(signer)]))
    assert _rules(vs) == ["nonzero_mix_hash"]
    h = s.child(g, signer)
    h["extraData"] = "0x" + extra_data([A]).hex()  # a signer list off a checkpoint
    _, vs = snap.apply(finish(h, KEYS[ADDRS.index(signer)]))
    assert _rules(vs) == ["extra_data_layout"] and vs[0].signer == signer
    h = s.child(g, signer)
    h["extraData"] = h["extraData"][:-130] + "00" * 64 + "05"  # v = 5: no key recovers
    _, vs = snap.apply(finish(h, None))
    assert _rules(vs) == ["bad_seal"] and vs[0].signer is None
    h = s.child(g, signer)
    h["extraData"] = "0x" + "00" * 40
    after, vs = snap.apply(finish(h, None))
    assert _rules(vs) == ["extra_data_layout"] and after.number == 1 and after.sealer is None
    assert set(RULES) >= {v.rule for v in vs}


def test_a_header_that_is_not_the_child_is_a_caller_error() -> None:
    g, snap, s = _start([A, B, C])
    h1 = s.child(g, B)
    h2 = s.child(h1, C)
    with pytest.raises(SnapshotError, match="not the child of the snapshot at block 0"):
        snap.apply(h2)
    sibling = s.child(g, B, salt=1)
    snap1, _ = snap.apply(sibling)
    with pytest.raises(SnapshotError, match="apply it to its parent's snapshot"):
        snap1.apply(h2)


# ------------------------------------------------------------------ reorg and storage


def test_snapshot_after_a_reorg_across_a_vote() -> None:
    """Fork A passes a vote adding D at block 3; fork B (from block 1) does not.

    The store keeps one serialized snapshot per block; on the reorg it resumes from the
    snapshot of the fork point and re-applies fork B's blocks.
    """
    g, snap, s = _start([A, B, C])
    order = sorted([A, B, C], key=str.lower)
    h1 = s.child(g, order[1], vote=(D, True))
    fork_a = [h1]
    fork_a.append(s.child(fork_a[-1], order[2]))
    fork_a.append(s.child(fork_a[-1], order[0], vote=(D, True)))  # passes: 2 of 3
    stored: dict[int, bytes] = {0: snap.to_bytes()}
    for h in fork_a:
        snap, vs = snap.apply(h)
        assert vs == []
        stored[snap.number] = snap.to_bytes()
    assert snap.is_signer(D) and snap.changes[0].kind == "authorized"
    # the reorg: blocks 2..3 are replaced by fork B's 2', 3', 4' (no second vote)
    fork_point = 1
    fork_b = [s.child(h1, order[2], salt=1)]
    fork_b.append(s.child(fork_b[-1], order[0], salt=1))
    fork_b.append(s.child(fork_b[-1], order[1], salt=1))
    for n in list(stored):
        if n > fork_point:
            del stored[n]
    snap = CliqueSnapshot.from_bytes(stored[fork_point])
    for h in fork_b:
        snap, vs = snap.apply(h)
        assert vs == []
        stored[snap.number] = snap.to_bytes()
    assert not snap.is_signer(D) and len(snap.signers) == 3
    assert snap.tally() == {D.lower(): (True, 1)}  # block 1's vote survived the reorg
    assert all(not CliqueSnapshot.from_bytes(stored[n]).changes for n in (2, 3, 4))
    # and back to fork A: the same snapshot bytes as the first time
    again = CliqueSnapshot.from_bytes(stored[fork_point])
    for h in fork_a[1:]:
        again, _ = again.apply(h)
    assert again.is_signer(D)


def test_serialization_round_trip_and_corruption() -> None:
    g, snap, s = _start([A, B, C], period=2, epoch=7)
    h1 = s.child(g, sorted([A, B, C], key=str.lower)[1], vote=(D, True), dt=2)
    snap, _ = snap.apply(h1)
    back = CliqueSnapshot.from_bytes(snap.to_bytes())
    assert back == snap and back.to_json() == snap.to_json()
    assert json.loads(snap.to_json())["v"] == 1
    with pytest.raises(SnapshotError, match="corrupt"):
        CliqueSnapshot.from_bytes(b"{not json")
    with pytest.raises(SnapshotError, match="unknown Clique snapshot format"):
        CliqueSnapshot.from_json(snap.to_json().replace('"v":1', '"v":99'))
    with pytest.raises(SnapshotError, match="corrupt"):
        CliqueSnapshot.from_json('{"v":1}')
    with pytest.raises(ValueError, match="epoch"):
        CliqueConfig(1, 0)


def test_expected_set_check() -> None:
    _, snap, _ = _start([A, B, C])
    assert check_expected(snap, []) is None
    assert check_expected(snap, [x.upper().replace("0X", "0x") for x in (C, B, A)]) is None
    v = check_expected(snap, [A, B, D])
    assert v is not None and v.rule == "expected_set_mismatch" and C in v.detail and D in v.detail
    assert v.to_dict()["rule"] == "expected_set_mismatch"


# ------------------------------------------------------------------ real public chains


def _fixtures(network: str) -> list[dict[str, Any]]:
    path = DATA / "clique.json"
    if not path.is_file():
        pytest.skip(f"PoA header fixtures not found in {DATA}")
    recs: list[dict[str, Any]] = json.loads(path.read_text())
    return sorted((r for r in recs if r["network"] == network), key=lambda r: int(r["number"], 16))


@pytest.mark.parametrize("network, genesis_time, count", [("goerli", 0x5C51A607, 6), ("rinkeby", 0x58EE40BA, 4)])
def test_real_chain_from_genesis(network: str, genesis_time: int, count: int) -> None:
    """Goerli 1-6 and Rinkeby 1-4 (consecutive, period 15) from their genesis set."""
    recs = [r for r in _fixtures(network) if int(r["number"], 16) <= count]
    assert [int(r["number"], 16) for r in recs] == list(range(1, count + 1))
    gen = {"number": "0x0", "hash": recs[0]["parentHash"], "timestamp": hex(genesis_time)}
    snap = CliqueSnapshot.start(gen, recs[0]["authorities"], CliqueConfig(15, 30000))
    for r in recs:
        snap, vs = snap.apply(r)
        assert vs == [], vs
        assert snap.sealer is not None and snap.sealer.lower() == r["signer"]
        assert snap.in_turn is r["in_turn"]
        assert snap.hash.hex() == r["hash"][2:]


def test_real_rinkeby_checkpoint_agrees_and_a_wrong_set_is_caught() -> None:
    rec = [r for r in _fixtures("rinkeby") if int(r["number"], 16) == 30000][0]
    parent = {"number": hex(29999), "hash": rec["parentHash"], "timestamp": hex(int(rec["timestamp"], 16) - 15)}
    snap = CliqueSnapshot.start(parent, rec["authorities"], CliqueConfig(15, 30000))
    after, vs = snap.apply(rec)
    assert vs == [] and after.signers == tuple(sorted(rec["checkpoint_signers"]))
    wrong = CliqueSnapshot.start(parent, rec["authorities"][:2], CliqueConfig(15, 30000))
    after, vs = wrong.apply(rec)
    assert "checkpoint_signers_mismatch" in _rules(vs)
    assert after.signers == tuple(sorted(rec["checkpoint_signers"]))


def test_launcher_genesis_is_a_clique_genesis() -> None:
    """The geth-style genesis the EthereumJS launcher writes parses as EIP-225 wants."""
    from edge.devnet.ethereumjs import clique_genesis

    g = clique_genesis(7202, [C, A], period=2, epoch=100, timestamp=1_700_000_000)
    assert g["config"]["clique"] == {"period": 2, "epoch": 100}
    extra = bytes.fromhex(g["extraData"][2:])
    assert signers_from_extra(extra) == tuple(sorted([A.lower(), C.lower()])) and extra[-65:] == bytes(65)
    header = {**genesis([A]), "extraData": g["extraData"]}
    snap, vs = CliqueSnapshot.genesis(finish(header, None), CliqueConfig(2, 100))
    assert vs == [] and snap.checksummed() == tuple(sorted([A, C], key=str.lower))
    with pytest.raises(ValueError, match="at least one signer"):
        clique_genesis(1, [])
    with pytest.raises(ValueError, match="not a 20-byte"):
        clique_genesis(1, ["0x1234"])


def test_follow_gives_one_verdict_per_block_from_genesis() -> None:
    """The ingest's Clique step: verdicts from the genesis, a vote, a stranger, a resume."""
    from edge.chain.clique import follow

    g = genesis([A, B, C])
    s = Sealer([A, B, C])
    order = sorted([A, B, C], key=str.lower)
    h1 = s.child(g, order[1], vote=(D, True))
    h2 = s.child(h1, order[2], vote=(D, True))  # D joins
    s.signers.append(D)
    h3 = s.child(h2, STRANGER, key=KEYS[5], difficulty=1)
    cfg = CliqueConfig(1)
    last, verdicts = follow(None, [g, h1, h2], cfg, expected=[A, B, C])
    assert [v.number for v in verdicts] == [0, 1, 2]
    assert (verdicts[0].sealer, verdicts[0].authorized, verdicts[0].changes[0].kind) == (None, None, "genesis")
    assert verdicts[0].violations == ()  # the chain's genesis set is the expected one
    assert [(v.sealer, v.authorized, v.in_turn) for v in verdicts[1:]] == [(order[1], True, True),
                                                                          (order[2], True, True)]
    assert [c.kind for c in verdicts[2].changes] == ["authorized"]
    assert [x.rule for x in verdicts[2].violations] == ["expected_set_mismatch"]  # D is not configured
    # resume from the stored snapshot of block 2, as after a restart or a reorg
    resumed = CliqueSnapshot.from_bytes(verdicts[2].snapshot)
    assert resumed == last
    last, more = follow(resumed, [h3], cfg)
    assert [(v.sealer, v.authorized, [x.rule for x in v.violations]) for v in more] == [
        (STRANGER, False, ["unauthorized_signer"])]
    assert follow(None, [], cfg) == (None, [])
    with pytest.raises(SnapshotError):
        follow(None, [h1], cfg)
