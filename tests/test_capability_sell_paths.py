"""The cap-3 rules of edge.scoring.capabilities on their ground-truth contracts
(contracts/capabilities/src/SellPaths.sol), oldest and newest compiler, optimizer off /
on: in a contract with no transfer, the withdraw / refund a holder sells through and the
privileged function that can stop it or create value are both named; a token's buy-back
is a sell path too; a privileged SELFDESTRUCT is a withdrawal; the controls stay clean."""

from __future__ import annotations


import pytest

from tests.capability_suite import SETTINGS, suite_report
from edge.scoring.selector_names import selector_of




# (contract, flag, the sell path, the privileged setter, words of the reason)
_CASES = [
    ("RefundSwitchSale", "transfer_pausable", "refund()", "setRefundsOpen(bool)",
     "refund() pays ether out to the caller"),
    ("StageRefundSale", "transfer_pausable", "refund()", "enableRefunds()", "only in the stage"),
    ("WithdrawCapVault", "anti_whale_modifiable", "withdraw(uint256)", "setMaxWithdraw(uint256)",
     "reverts past the limit"),
    ("TimeLockVault", "trading_cooldown", "withdraw()", "setUnlockTime(uint256)",
     "depending on the time"),
    ("CreditLedger", "is_mintable", "withdraw()", "credit(address,uint256)", "credits any address"),
    ("SwitchBuybackToken", "transfer_pausable", "sell(uint256)", "setBuyback(bool)",
     "pays ether for the caller's tokens"),
]  # fmt: skip


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize(("name", "flag", "path", "setter", "words"), _CASES)
def test_sell_path_and_its_privileged_setter_are_named(
    setting: str, name: str, flag: str, path: str, setter: str, words: str
) -> None:
    rep = suite_report(setting, name)
    assert rep.flag_names == (flag,), rep.flag_names  # nothing else (a refund is no withdrawal)
    f = rep.flag(flag)
    assert f is not None and set(f.selectors) == {selector_of(path), selector_of(setter)}
    assert words in f.reason and "owner-only" in f.reason, f.reason


@pytest.mark.parametrize("setting", SETTINGS)
def test_fallback_sale_at_an_owner_set_price_is_slippage(setting: str) -> None:
    f = suite_report(setting, "FallbackSaleToken").flag("slippage_modifiable")
    assert f is not None and set(f.selectors) == {-1, selector_of("setPrice(uint256)")}
    assert f.reason.startswith("the fallback computes a fee with the rate")


@pytest.mark.parametrize("setting", SETTINGS)
def test_privileged_selfdestruct_is_a_withdrawal(setting: str) -> None:
    f = suite_report(setting, "KillableVault").flag("owner_can_withdraw")
    assert f is not None and f.selectors == (selector_of("kill()"),) and f.opcodes == ("SELFDESTRUCT",)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name", ["OpenRefundSale", "FixedCapVault", "FixedLockVault",
                                  "PaidCreditLedger", "FixedFallbackSaleToken", "OpenBuybackToken"])
def test_controls_have_no_flag(setting: str, name: str) -> None:
    assert suite_report(setting, name).flag_names == ()
