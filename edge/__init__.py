"""Edge gateway: watch a private PoA Ethereum chain, score every contract deployed on it,
and carry tamper-evidence of that chain to public networks.

Where things go (each folder is one part of the data path)::

    PoA node --rpc--> ingest --> store (outbox) <-- scoring
                                   |
                                evidence (checkpoint: leaves, CRC, Merkle root, EIP-712)
                                   |
                         fleet (attest, quorum, duty) --> forward (testnet chunks, mainnet anchor)
                                                               |
                                                   audit (``edge verify``, the auditor)

- a **block** is read by ``ingest/`` (``adapter.py`` asks the node, ``stage.py`` links,
  follows reorgs, checks the seal with ``chain/poa.py``; on a Clique chain ``ingest/clique.py``
  carries the EIP-225 signer-set snapshot of ``chain/clique.py``) and written to
  ``store/chain_data.py`` (snapshots, signer-set changes, alarms: ``store/clique.py``);
- a **contract** is written with its block, then scored by ``scoring/stage.py``
  (``features.py`` -> ``model.py``) into ``store/scores.py``, and once per distinct code
  analysed by ``scoring/analysis.py`` (``capabilities/`` in a worker process, off the
  hot path) into ``store/capabilities.py``;
- a **checkpoint** is cut by ``evidence/checkpointer.py`` into ``store/checkpoints.py``,
  attested by ``fleet/``, encrypted for auditors (``evidence/metadata.py``, ``crypto/ecies.py``);
- a **transaction** to a public chain is queued by ``forward/stage.py`` and sent, bumped
  and confirmed by ``forward/txsender.py`` from the outbox.

The layers; imports go downwards only (checked against the code)::

    cli                          the command line (edge run | status | verify | demo | ...)
    devnet  appliance            embedded dev chains and the demo; systemd, GPIO, metrics, bench
    audit                        edge verify
    agent                        one outbox and the stages, in one TaskGroup
    ingest scoring checkpoint    the stages, each reading the previous one's durable state
      fleet forward              (the fleet stage wraps the forward stage)
    store  contracts             ALL SQL: the outbox, migrations, every query; ABI bindings
    chain  evidence              headers, seals, records; leaves, CRC, Merkle, EIP-712, metadata
    rpc  crypto                  JsonRpc (call, batch, subscribe): WebSocket, HTTP, MockRpc; ECIES, keys
    errors config clock aio      primitives (the error tree, the TOML config, injected time,
      memory                     glibc malloc arenas and trim)

Every network edge (an :class:`edge.rpc.RpcFactory`) and the clock
(:class:`edge.clock.Clock`) are injected at start-up by the owner (``Agent``, the CLI),
so tests run anywhere with :class:`edge.rpc.mock.MockNetwork` and
:class:`edge.clock.MockClock`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
