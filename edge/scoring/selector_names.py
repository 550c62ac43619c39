"""A small bundled table of well-known function signatures, keyed by 4-byte selector.

The selector is the first 4 bytes of keccak-256 of the canonical signature text
(Solidity ABI specification, "Function Selector"). The table is computed once, lazily,
from :data:`SIGNATURES` with eth-hash, so it cannot drift from the texts. It only names
selectors in evidence and reason strings; no analysis decision depends on a name.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

__all__ = ["SIGNATURES", "selector_of", "signature_of"]

SIGNATURES: Final[tuple[str, ...]] = (
    # ERC-20 / EIP-2612
    "totalSupply()", "balanceOf(address)", "transfer(address,uint256)",
    "transferFrom(address,address,uint256)", "approve(address,uint256)",
    "allowance(address,address)", "increaseAllowance(address,uint256)",
    "decreaseAllowance(address,uint256)", "name()", "symbol()", "decimals()",
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)", "nonces(address)",
    "DOMAIN_SEPARATOR()", "cap()",
    # ownership and roles
    "owner()", "getOwner()", "renounceOwnership()", "transferOwnership(address)",
    "acceptOwnership()", "pendingOwner()", "claimOwnership()", "lock(uint256)",
    "unlock()", "geUnlockTime()", "getUnlockTime()", "setOwner(address)",
    "changeOwner(address)", "grantRole(bytes32,address)", "revokeRole(bytes32,address)",
    "renounceRole(bytes32,address)", "hasRole(bytes32,address)",
    "getRoleAdmin(bytes32)", "addMinter(address)", "renounceMinter()",
    "isMinter(address)", "addPauser(address)", "isPauser(address)",
    # supply
    "mint(address,uint256)", "mint(uint256)", "mintTo(address,uint256)",
    "burn(uint256)", "burn(address,uint256)", "burnFrom(address,uint256)",
    "issue(uint256)", "finishMinting()",
    # pause / trading switches
    "pause()", "unpause()", "paused()", "openTrading()", "enableTrading()",
    "setTradingEnabled(bool)", "setTrading(bool)", "tradingOpen()",
    # black / white lists
    "addToBlacklist(address)", "removeFromBlacklist(address)", "blacklist(address)",
    "unblacklist(address)", "isBlacklisted(address)", "setBlacklist(address,bool)",
    "blacklistAddress(address,bool)", "setBots(address[])", "delBot(address)",
    "addToWhitelist(address)", "removeFromWhitelist(address)", "setWhitelist(address,bool)",
    "isWhitelisted(address)", "whitelist(address)",
    # fees and limits
    "setFee(uint256)", "setFees(uint256,uint256)", "setTaxFeePercent(uint256)",
    "setLiquidityFeePercent(uint256)", "setMaxTxPercent(uint256)",
    "setMaxTxAmount(uint256)", "setMaxWalletSize(uint256)", "excludeFromFee(address)",
    "includeInFee(address)", "setSwapAndLiquifyEnabled(bool)", "setCooldownEnabled(bool)",
    "setCooldown(uint256)", "removeLimits()", "setTaxRate(uint256)",
    # balances moved by a privileged caller
    "setBalance(address,uint256)", "adminTransfer(address,address,uint256)",
    "forceTransfer(address,address,uint256)", "seize(address,uint256)",
    "destroyBlackFunds(address)",
    # AMM plumbing seen in token code
    "uniswapV2Pair()", "uniswapV2Router()", "manualswap()", "manualsend()",
    # proxies (EIP-1967, EIP-1822)
    "upgradeTo(address)", "upgradeToAndCall(address,bytes)", "implementation()",
    "admin()", "changeAdmin(address)", "proxiableUUID()",
    # self-destruct and funds
    "kill()", "destroy()", "close()", "withdraw()", "withdraw(uint256)",
    "deposit()", "getBalance()",
    # sales, vaults and games (their withdraw / refund is how a holder sells)
    "refund()", "claimRefund()", "enableRefunds()", "safeWithdrawal()", "claim()",
    "finalize()", "buyTokens(address)",
    # the ethereum.org "MyAdvancedToken" tutorial family (common in 2017-2018 tokens)
    "mintToken(address,uint256)", "freezeAccount(address,bool)", "setPrices(uint256,uint256)",
    "buy()", "sell(uint256)", "approveAndCall(address,uint256,bytes)", "frozenAccount(address)",
    # misc
    "multicall(bytes[])", "execute(address,uint256,bytes)", "supportsInterface(bytes4)",
    "safeTransferFrom(address,address,uint256)", "setApprovalForAll(address,bool)",
)  # fmt: skip
"""Canonical signatures of the functions token-security tools most often report."""


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    from eth_hash.auto import keccak

    return {int.from_bytes(keccak(s.encode())[:4], "big"): s for s in SIGNATURES}


def selector_of(signature: str) -> int:
    """4-byte selector (as an int) of a canonical signature such as ``"mint(address,uint256)"``."""
    from eth_hash.auto import keccak

    return int.from_bytes(keccak(signature.encode())[:4], "big")


def signature_of(selector: int) -> str | None:
    """The bundled text signature of ``selector`` (0..2**32-1), or None when unknown."""
    return _table().get(selector)
