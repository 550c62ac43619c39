"""The public tiers of a dev network: CrudStore on each testnet, Anchor on mainnet, a
funded device keystore and an auditor key (used by ``edge demo`` and the tests)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge.devnet.activity import Activity
from edge.contracts.anchor import anchor_init_code, encode_set_devices
from edge.contracts.attestations import attestations_init_code
from edge.devnet.anvil import TIERS, DevChains, TierSpec
from edge.errors import DevChainError
from edge.crypto.ecies import public_key_of
from edge.evidence.eip712 import Eip712Domain, domain_separator
from edge.crypto.keys import create_keystore

__all__ = ["PublicTiers", "deploy_public_tiers", "tier_specs", "PASSPHRASE_ENV", "TESTNET_CLIENTS"]

TESTNET_CLIENTS: tuple[str, ...] = ("anvil", "hardhat")
"""Clients that can serve a testnet tier (``edge demo --testnet-client``)."""


def tier_specs(testnet_client: str = "anvil", tiers: tuple[TierSpec, ...] = TIERS) -> tuple[TierSpec, ...]:
    """``tiers`` with the first testnet (``testnet-a``) served by ``testnet_client``
    (``"anvil"`` or ``"hardhat"``); the others stay on anvil. Raises ValueError for
    another client name."""
    if testnet_client not in TESTNET_CLIENTS:
        raise ValueError(f"testnet client must be one of {', '.join(TESTNET_CLIENTS)}, got {testnet_client!r}")
    return tuple(replace(t, client=testnet_client) if t.name == "testnet-a" else t for t in tiers)

PASSPHRASE_ENV = "EDGE_DEMO_PASSPHRASE"
"""Environment variable that carries the demo keystore's passphrase."""


@dataclass(frozen=True, slots=True)
class PublicTiers:
    """What :func:`deploy_public_tiers` made: the shared config ``sections`` (``forward``,
    and ``fleet`` for a fleet), one ``[device]`` section per device, the auditor's private
    key, the device addresses, the owner of the contracts."""

    sections: dict[str, Any]
    device_sections: list[dict[str, Any]]
    auditor_key: bytes
    devices: list[str]
    owner: str

    @property
    def device(self) -> str:
        """The first (or only) device's address."""
        return self.devices[0]

    def config_for(self, i: int) -> dict[str, Any]:
        """Config sections (``device``, ``forward``, ``fleet``) of device ``i``."""
        return {"device": self.device_sections[i], **self.sections}


async def _send(chain: Any, owner: str, to: str | None, data: bytes, gas: int = 5_000_000) -> dict[str, Any]:
    tx = {"from": owner, "data": "0x" + data.hex(), "gas": hex(gas)}
    if to:
        tx["to"] = to
    h = await chain.rpc("eth_sendTransaction", tx)
    (rc,) = await Activity(chain).wait([h])
    if int(rc["status"], 16) != 1:
        raise DevChainError(f"{chain.name}: setup transaction {h} reverted")
    return rc


async def deploy_public_tiers(chains: DevChains, workdir: Path, *, testnets: tuple[str, ...] = ("testnet-a", "testnet-b"),
                              mainnet: str = "mainnet", batch: int = 1, devices: int = 1, quorum: int = 1,
                              fleet: bool = False, local: str = "poa", takeover_s: float = 30.0) -> PublicTiers:
    """Deploy CrudStore on each testnet and Anchor on mainnet (device set = ``devices``
    new keys, quorum ``quorum``), and with ``fleet`` the Attestations twin on the local
    chain; create and fund the device keystores (scrypt n = 2**14: demo keys;
    ``device.json`` for one device, ``device-<i>.json`` for several) and an auditor key
    in ``workdir``. Raises DevChainError when a node refuses."""
    passphrase = os.urandom(16).hex()
    os.environ[PASSPHRASE_ENV] = passphrase
    names = ["device.json"] if devices == 1 else [f"device-{i}.json" for i in range(devices)]
    addrs = [await asyncio.to_thread(create_keystore, workdir / n, passphrase.encode(), work_factor=2**14)
             for n in names]
    auditor = os.urandom(32)
    (workdir / "auditor.key").write_text(auditor.hex() + "\n")
    (workdir / "auditor.key").chmod(0o600)
    funded = [*testnets, mainnet] + ([local] if fleet else [])
    for name in funded:
        for a in addrs:
            await chains[name].rpc("anvil_setBalance", a, hex(10**21))
    nets = []
    for name in testnets:
        act = Activity(chains[name])
        await act.setup()
        nets.append({"url": chains[name].http_url, "chain_id": chains[name].chain_id, "store": act.crud})
    main = chains[mainnet]
    owner = (await main.rpc("eth_accounts"))[0]
    anchor = (await _send(main, owner, None, anchor_init_code()))["contractAddress"]
    await _send(main, owner, anchor, encode_set_devices(addrs, quorum), 500_000 + 50_000 * devices)
    sections: dict[str, Any] = {
        "forward": {"enabled": True, "auditors": ["0x" + public_key_of(auditor).hex()], "batch": batch,
                    "chunk_bytes": 2048, "confirmations": 1, "testnets": nets,
                    "mainnet": {"url": main.http_url, "chain_id": main.chain_id, "anchor": anchor}},
    }
    if fleet:
        loc = chains[local]
        lowner = (await loc.rpc("eth_accounts"))[0]
        sep = domain_separator(Eip712Domain(main.chain_id, anchor))
        att = (await _send(loc, lowner, None, attestations_init_code(sep)))["contractAddress"]
        await _send(loc, lowner, att, encode_set_devices(addrs, quorum), 500_000 + 50_000 * devices)
        sections["fleet"] = {"enabled": True, "attestations": att, "rpc_url": loc.http_url, "takeover_s": takeover_s}
    device_sections = [{"keystore": n, "passphrase": f"env:{PASSPHRASE_ENV}"} for n in names]
    return PublicTiers(sections, device_sections, auditor, addrs, owner)
