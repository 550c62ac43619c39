"""The public tiers of a dev network: CrudStore on each testnet, Anchor on mainnet, a
funded device keystore and an auditor key (used by ``edge demo`` and the tests)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.chain.activity import Activity
from edge.chain.anchor import anchor_init_code, encode_set_devices
from edge.chain.devchain import DevChains
from edge.seal.ecies import public_key_of
from edge.seal.keys import create_keystore

__all__ = ["PublicTiers", "deploy_public_tiers", "PASSPHRASE_ENV"]

PASSPHRASE_ENV = "EDGE_DEMO_PASSPHRASE"
"""Environment variable that carries the demo keystore's passphrase."""


@dataclass(frozen=True, slots=True)
class PublicTiers:
    """What :func:`deploy_public_tiers` made: config ``sections`` (``device`` and
    ``forward``), the auditor's private key, the device address, the Anchor owner."""

    sections: dict[str, Any]
    auditor_key: bytes
    device: str
    owner: str


async def deploy_public_tiers(chains: DevChains, workdir: Path, *, testnets: tuple[str, ...] = ("testnet-a", "testnet-b"),
                              mainnet: str = "mainnet", batch: int = 1) -> PublicTiers:
    """Deploy CrudStore on each testnet and Anchor on mainnet (device set = the new device,
    quorum 1), create and fund the device keystore (scrypt n = 2**14: a demo key) and an
    auditor key in ``workdir``. Raises DevChainError when a node refuses."""
    passphrase = os.urandom(16).hex()
    os.environ[PASSPHRASE_ENV] = passphrase
    device = await asyncio.to_thread(create_keystore, workdir / "device.json", passphrase.encode(),
                                     work_factor=2**14)
    auditor = os.urandom(32)
    (workdir / "auditor.key").write_text(auditor.hex() + "\n")
    (workdir / "auditor.key").chmod(0o600)
    nets = []
    for name in testnets:
        act = Activity(chains[name])
        await act.setup()
        await chains[name].rpc("anvil_setBalance", device, hex(10**21))
        nets.append({"url": chains[name].http_url, "chain_id": chains[name].chain_id, "store": act.crud})
    main = chains[mainnet]
    await main.rpc("anvil_setBalance", device, hex(10**21))
    owner = (await main.rpc("eth_accounts"))[0]
    deploy = await main.rpc("eth_sendTransaction", {"from": owner, "data": "0x" + anchor_init_code().hex(),
                                                     "gas": hex(5_000_000)})
    anchor = (await Activity(main).wait([deploy]))[0]["contractAddress"]
    tx = await main.rpc("eth_sendTransaction", {"from": owner, "to": anchor, "gas": hex(500_000),
                                                 "data": "0x" + encode_set_devices([device], 1).hex()})
    await Activity(main).wait([tx])
    sections = {
        "device": {"keystore": "device.json", "passphrase": f"env:{PASSPHRASE_ENV}"},
        "forward": {"enabled": True, "auditors": ["0x" + public_key_of(auditor).hex()], "batch": batch,
                    "chunk_bytes": 2048, "confirmations": 1, "testnets": nets,
                    "mainnet": {"url": main.http_url, "chain_id": main.chain_id, "anchor": anchor}},
    }
    return PublicTiers(sections, auditor, device, owner)
