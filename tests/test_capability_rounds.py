"""The cap-4 rules of edge.scoring.capabilities on their ground-truth contracts
(contracts/capabilities/src/Rounds.sol), oldest and newest compiler, optimizer off / on: a
withdraw that waits for a time one store away from its privileged setter (a public
function stores ``clock + duration``, the owner sets the duration) is ``trading_cooldown``,
whether it refuses before that time (a vault, block.timestamp) or credits the winner's
ledger entry only after it (a lottery, block.number); the reason names the sell path, the
function that stores the time and the owner's setter; fixed durations stay clean."""

from __future__ import annotations


import pytest

from tests.capability_suite import SETTINGS, suite_report
from edge.scoring.selector_names import selector_of




# (contract, the function that stores the time, the owner's setter, words of the reason)
_CASES = [
    ("RoundLockVault", selector_of("deposit()"), selector_of("setLockPeriod(uint256)"),
     "and reverts depending on the time in slot"),
    ("RoundLottery", -1, selector_of("setRoundLength(uint256)"),
     "but credits the ledger at slot"),
]  # fmt: skip


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize(("name", "timer", "setter", "words"), _CASES)
def test_time_lock_one_store_away_is_a_cooldown(
    setting: str, name: str, timer: int, setter: int, words: str
) -> None:
    rep = suite_report(setting, name)
    assert rep.flag_names == ("trading_cooldown",), rep.flag_names
    f = rep.flag("trading_cooldown")
    assert f is not None and set(f.selectors) == {selector_of("withdraw()"), timer, setter}
    assert f.reason.startswith("function 0x3ccfd60b withdraw() pays ether out to the caller")
    assert words in f.reason and "computes from the duration in slot" in f.reason, f.reason
    assert f"owner-only function 0x{setter:08x}" in f.reason, f.reason


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name", ["FixedRoundLockVault", "FixedRoundLottery"])
def test_fixed_durations_have_no_flag(setting: str, name: str) -> None:
    assert suite_report(setting, name).flag_names == ()
