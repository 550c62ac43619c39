"""The cap-2 rules of edge.scoring.capabilities on their ground-truth contracts
(contracts/capabilities/src/SetMint.sol), oldest and newest compiler, optimizer off / on:
each flag names the function and slot that carry it, and the controls stay clean."""

from __future__ import annotations


import pytest

from tests.capability_suite import SETTINGS, suite_report


_SEL_SYNC = 0xB1357BF9  # sync(uint256)
_SEL_SET_PRICES = 0x05FEFDA7  # setPrices(uint256,uint256)
_SEL_SELL = 0xE4849B32  # sell(uint256)



def test_selectors_used_here_are_right() -> None:
    from eth_hash.auto import keccak

    for sel, sig in ((_SEL_SYNC, "sync(uint256)"), (_SEL_SET_PRICES, "setPrices(uint256,uint256)"),
                     (_SEL_SELL, "sell(uint256)")):
        assert int.from_bytes(keccak(sig.encode())[:4], "big") == sel, sig


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name", ["SelfBalanceToken", "AsmSelfBalanceToken"])
def test_privileged_set_of_own_balance_is_a_mint(setting: str, name: str) -> None:
    rep = suite_report(setting, name)
    assert rep.flag_names == ("is_mintable",)
    flag = rep.flag("is_mintable")
    assert flag is not None and flag.selectors == (_SEL_SYNC,)
    assert flag.slots == ("m:0x4",), flag.slots  # balanceOf, also when hashed in free memory
    assert flag.reason.startswith("owner-only function 0xb1357bf9") and " sets " in flag.reason


@pytest.mark.parametrize("setting", SETTINGS)
def test_reset_of_supply_and_balance_is_a_mint(setting: str) -> None:
    rep = suite_report(setting, "ResetSupplyToken")
    assert rep.flag_names == ("is_mintable", "owner_change_balance")
    flag = rep.flag("is_mintable")
    assert flag is not None and "sets the total supply and a balance" in flag.reason
    assert "0x3" in flag.slots and "m:0x4" in flag.slots  # totalSupply and balanceOf


@pytest.mark.parametrize("setting", SETTINGS)
def test_supply_label_alone_is_no_mint(setting: str) -> None:
    assert suite_report(setting, "SupplyLabelToken").flag_names == ()


@pytest.mark.parametrize("setting", SETTINGS)
def test_ether_paid_at_an_owner_set_rate_is_a_withdrawal(setting: str) -> None:
    rep = suite_report(setting, "PricedSaleToken")
    flag = rep.flag("owner_can_withdraw")
    assert flag is not None and set(flag.selectors) == {_SEL_SELL, _SEL_SET_PRICES}
    assert flag.confidence == 0.6 and len(flag.slots) == 1
    assert "sell(uint256) pays out ether at the rate" in flag.reason
    assert "owner-only function 0x05fefda7 setPrices(uint256,uint256)" in flag.reason


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name", ["HookToken", "ValidatorToken"])
def test_transfer_asking_a_replaceable_contract_is_pausable(setting: str, name: str) -> None:
    rep = suite_report(setting, name)
    assert rep.flag_names == ("transfer_pausable", "external_call")
    flag = rep.flag("transfer_pausable")
    assert flag is not None and flag.confidence == 0.7 and "CALL" in flag.opcodes
    assert "reverts on the answer of the contract whose address is kept in slot" in flag.reason
    assert "owner-only function" in flag.reason and len(flag.selectors) == 2


@pytest.mark.parametrize("setting", SETTINGS)
def test_constant_hook_is_only_an_external_call(setting: str) -> None:
    rep = suite_report(setting, "FixedHookToken")
    assert rep.flag_names == ("external_call",)
    ext = rep.flag("external_call")
    # solc 0.4 compiles the call as CALL; the test interface is not view, so CALL in all.
    assert ext is not None and ext.opcodes == ("CALL",)


def test_view_call_in_transfer_is_an_external_call() -> None:
    ext = suite_report("solc-0.8.37-opt", "ValidatorToken").flag("external_call")
    assert ext is not None and ext.opcodes == ("STATICCALL",) and "view call" in ext.reason
    old = suite_report("solc-0.4.26-noopt", "ValidatorToken").flag("external_call")
    assert old is not None and old.opcodes == ("CALL",)  # solc 0.4: no STATICCALL yet


@pytest.mark.parametrize("setting", SETTINGS)
def test_limit_scaled_by_a_stored_factor_is_modifiable(setting: str) -> None:
    rep = suite_report(setting, "ScaledLimitToken")
    assert rep.flag_names == ("anti_whale_modifiable",)
    flag = rep.flag("anti_whale_modifiable")
    assert flag is not None and "reverts above the limit in slot" in flag.reason
    assert "removeLimits()" in flag.reason  # a write of a constant counts as a change
    assert suite_report(setting, "FixedScaledLimitToken").flag_names == ()


@pytest.mark.parametrize("setting", SETTINGS)
def test_fee_switched_to_a_constant_is_modifiable(setting: str) -> None:
    rep = suite_report(setting, "FeeSwitchToken")
    assert rep.flag_names == ("slippage_modifiable",)
    flag = rep.flag("slippage_modifiable")
    assert flag is not None and flag.reason.startswith("function 0xa9059cbb transfer(address,uint256)")
    assert "computes a fee with the rate in slot" in flag.reason and "owner-only" in flag.reason
