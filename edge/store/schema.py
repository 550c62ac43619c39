"""Versioned schema of the SQLite outbox.

The version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` ``[i]`` takes a
database from version ``i`` to ``i + 1`` and is applied in one transaction. A database
whose version is above ``len(MIGRATIONS)`` was written by a newer agent and is refused
(:class:`edge.errors.SchemaError`), never silently downgraded.

Tables (version 1). Byte strings (hashes, addresses, code) are stored as BLOBs, numbers
as INTEGERs; every table that holds chain data is keyed by ``chain_id`` first so one
outbox can serve several chains.

- ``cursor``: per chain, the last block whose records are all written (the sync point),
  with its hash and the newest head seen. It is updated in the same transaction as the
  records of the blocks it covers, so it can never run ahead of or behind the data.
- ``blocks``: one row per ingested canonical block (header summary, sealer, ``confirmed``: at least
  ``ingest.confirmations`` deep; ``final`` before version 7).
- ``logs``: records of kind log, keyed ``(chain_id, block_number, tx_index, log_index)``
  (``log_index`` is the block-wide index the node reports).
- ``contracts``: records of kind deployment, keyed ``(chain_id, block_number, tx_index,
  create_index)``; ``create_index`` orders the creations inside one transaction (0 for a
  top-level deployment, then the internal CREATE/CREATE2 in trace order).
- ``codes``: runtime bytecode by keccak256 (content-addressed: one row per distinct code).
- ``scores``: risk score of a code under one model (model id = sha256 of the ONNX file).
- ``alarms``: things an operator must see (foreign sealer, deep reorg, oversized code).

Version 2 adds the checkpoint/forward state:

- ``checkpoints``: one row per checkpointed block range (id, range, last block hash, Merkle
  root, leaf count) with its forwarding ``state`` (``sealed`` -> ``uploaded`` ->
  ``anchoring`` -> ``anchored``), the ``locator`` of its metadata on the testnets and the
  id of the anchor unit that carries it to mainnet.
- ``uploads``: every encrypted, padded chunk (and manifest replica) to store on a testnet
  CRUD contract, written *before* its transaction is queued, so a restart re-sends the
  same bytes under the same key instead of encrypting anew.
- ``anchors``: one mainnet anchor unit (one checkpoint, or a batch of K whose ``root`` is
  the Merkle root over the member checkpoint ids), with the tx that carries it.
- ``sync_requests``: on-demand checkpoint requests (``edge sync-now``, the GPIO button),
  served by the checkpoint stage.

Version 3 adds the tx sender's state (:mod:`edge.forward.txsender`):

- ``txs``: one row per intent to send a tx (recipient, calldata, value, purpose, caller
  ``ref``) and its life cycle ``state`` (``queued`` -> ``signed`` -> ``sent`` -> ``mined``
  -> ``confirmed``, or ``failed``); the nonce is set when it is signed and is unique per
  ``(chain_id, sender)``; ``mined_block``/``mined_hash`` (block hash)/``mined_tx`` (the
  attempt's tx hash)/``status`` come from the receipt.
- ``tx_attempts``: every signed version of a tx (same nonce and payload, bumped fees):
  hash, raw signed bytes, fees, block at broadcast. Written durably *before* broadcast.
- ``nonces``: the next nonce per ``(chain_id, sender)``, advanced in the same transaction
  that stores a signed attempt.

Version 5 adds Clique (EIP-225) tracking (:mod:`edge.chain.clique`, :mod:`edge.store.clique`):

- ``clique_snapshots``: the signer-set snapshot after a block (canonical JSON), written with
  the block; pruned to the unconfirmed window plus one per 1024 blocks and one per change.
- ``signer_changes``: each change of the signer set (``genesis``, ``authorized``,
  ``dropped``, ``checkpoint``, ``start``) at a block, with the voters and the full set after
  it (``voters``/``signers``: concatenated 20-byte addresses); carried in checkpoints.
- ``blocks.in_turn``: the sealer was the in-turn signer (difficulty 2); ``alarms.block_hash``
  and ``alarms.signer``: the block and sealer an alarm names.

Version 6 adds ``capabilities`` (the capability report of each distinct code).

Version 7 renames columns, nothing else: ``blocks.final`` -> ``blocks.confirmed`` (N
confirmations deep, edge's own notion, not the JSON-RPC ``finalized`` block tag) and
``last_hash`` -> ``last_block_hash`` in ``checkpoints``, ``anchors`` and ``attestations``
(the hash of block ``to_block``, ``lastBlockHash`` in EIP-712 and the contracts).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1
    """
    CREATE TABLE cursor (
        chain_id     INTEGER PRIMARY KEY,
        block_number INTEGER NOT NULL,
        block_hash   BLOB    NOT NULL,
        head         INTEGER NOT NULL,
        updated_at   REAL    NOT NULL
    );
    CREATE TABLE blocks (
        chain_id    INTEGER NOT NULL,
        number      INTEGER NOT NULL,
        hash        BLOB    NOT NULL,
        parent_hash BLOB    NOT NULL,
        timestamp   INTEGER NOT NULL,
        miner       BLOB    NOT NULL,
        sealer      BLOB,
        seal_ok     INTEGER,
        tx_count    INTEGER NOT NULL,
        final       INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (chain_id, number)
    ) WITHOUT ROWID;
    CREATE TABLE logs (
        chain_id     INTEGER NOT NULL,
        block_number INTEGER NOT NULL,
        tx_index     INTEGER NOT NULL,
        log_index    INTEGER NOT NULL,
        tx_hash      BLOB    NOT NULL,
        address      BLOB    NOT NULL,
        topics       BLOB    NOT NULL,
        data         BLOB    NOT NULL,
        PRIMARY KEY (chain_id, block_number, tx_index, log_index)
    ) WITHOUT ROWID;
    CREATE TABLE contracts (
        chain_id     INTEGER NOT NULL,
        block_number INTEGER NOT NULL,
        tx_index     INTEGER NOT NULL,
        create_index INTEGER NOT NULL,
        tx_hash      BLOB    NOT NULL,
        address      BLOB    NOT NULL,
        creator      BLOB    NOT NULL,
        code_hash    BLOB    NOT NULL,
        code_size    INTEGER NOT NULL,
        oversize     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (chain_id, block_number, tx_index, create_index)
    ) WITHOUT ROWID;
    CREATE INDEX contracts_by_address ON contracts (chain_id, address);
    CREATE INDEX contracts_by_code ON contracts (code_hash);
    CREATE TABLE codes (
        code_hash BLOB    PRIMARY KEY,
        code      BLOB    NOT NULL,
        size      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE scores (
        code_hash    BLOB    NOT NULL,
        model_id     TEXT    NOT NULL,
        score        REAL    NOT NULL,
        flagged      INTEGER NOT NULL,
        top_features TEXT    NOT NULL,
        scored_at    REAL    NOT NULL,
        PRIMARY KEY (code_hash, model_id)
    ) WITHOUT ROWID;
    CREATE TABLE alarms (
        id           INTEGER PRIMARY KEY,
        chain_id     INTEGER NOT NULL,
        block_number INTEGER,
        kind         TEXT    NOT NULL,
        detail       TEXT    NOT NULL,
        at           REAL    NOT NULL
    );
    """,
    # 1 -> 2: checkpoints and their forwarding (issue: checkpoint and forward)
    """
    CREATE TABLE checkpoints (
        id          BLOB    PRIMARY KEY,
        chain_id    INTEGER NOT NULL,
        from_block  INTEGER NOT NULL,
        to_block    INTEGER NOT NULL,
        last_hash   BLOB    NOT NULL,
        root        BLOB    NOT NULL,
        leaves      INTEGER NOT NULL,
        created_at  REAL    NOT NULL,
        state       TEXT    NOT NULL,
        locator     BLOB,
        anchor_id   BLOB,
        UNIQUE (chain_id, from_block)
    ) WITHOUT ROWID;
    CREATE TABLE uploads (
        checkpoint_id BLOB    NOT NULL,
        part          INTEGER NOT NULL,
        chain_id      INTEGER NOT NULL,
        store         BLOB    NOT NULL,
        key           BLOB    NOT NULL,
        data          BLOB    NOT NULL,
        tx_id         INTEGER,
        PRIMARY KEY (checkpoint_id, part, chain_id)
    ) WITHOUT ROWID;
    CREATE TABLE anchors (
        id          BLOB    PRIMARY KEY,
        chain_id    INTEGER NOT NULL,
        from_block  INTEGER NOT NULL,
        to_block    INTEGER NOT NULL,
        last_hash   BLOB    NOT NULL,
        root        BLOB    NOT NULL,
        locator     BLOB    NOT NULL,
        members     BLOB    NOT NULL,
        state       TEXT    NOT NULL,
        tx_id       INTEGER,
        created_at  REAL    NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sync_requests (
        id           INTEGER PRIMARY KEY,
        requested_at REAL    NOT NULL,
        done_at      REAL
    );
    """,
    # 2 -> 3: the tx sender (edge.forward.txsender): intents, signed attempts, nonce counters
    """
    CREATE TABLE txs (
        id          INTEGER PRIMARY KEY,
        chain_id    INTEGER NOT NULL,
        sender      BLOB    NOT NULL,
        purpose     TEXT    NOT NULL,
        ref         BLOB,
        to_addr     BLOB    NOT NULL,
        data        BLOB    NOT NULL,
        value       INTEGER NOT NULL DEFAULT 0,
        gas         INTEGER,
        nonce       INTEGER,
        state       TEXT    NOT NULL CHECK (state IN
                        ('queued', 'signed', 'sent', 'mined', 'confirmed', 'failed')),
        created_at  REAL    NOT NULL,
        updated_at  REAL    NOT NULL,
        mined_block INTEGER,
        mined_hash  BLOB,
        mined_tx    BLOB,
        status      INTEGER,
        error       TEXT,
        UNIQUE (chain_id, sender, nonce)
    );
    CREATE INDEX txs_by_state ON txs (chain_id, sender, state, id);
    CREATE INDEX txs_by_ref ON txs (purpose, ref);
    CREATE TABLE tx_attempts (
        tx_id            INTEGER NOT NULL REFERENCES txs (id),
        attempt          INTEGER NOT NULL,
        nonce            INTEGER NOT NULL,
        hash             BLOB    NOT NULL UNIQUE,
        raw              BLOB    NOT NULL,
        max_fee          INTEGER NOT NULL,
        max_priority_fee INTEGER NOT NULL,
        sent_block       INTEGER,
        created_at       REAL    NOT NULL,
        PRIMARY KEY (tx_id, attempt)
    ) WITHOUT ROWID;
    CREATE TABLE nonces (
        chain_id   INTEGER NOT NULL,
        sender     BLOB    NOT NULL,
        next_nonce INTEGER NOT NULL,
        PRIMARY KEY (chain_id, sender)
    ) WITHOUT ROWID;
    """,
    # 3 -> 4: the fleet (attestations read from the local chain, sync duty)
    """
    CREATE TABLE attestations (
        id           BLOB    NOT NULL,
        device       TEXT    NOT NULL,
        chain_id     INTEGER NOT NULL,
        from_block   INTEGER NOT NULL,
        to_block     INTEGER NOT NULL,
        last_hash    BLOB    NOT NULL,
        root         BLOB    NOT NULL,
        signature    BLOB    NOT NULL,
        block_number INTEGER NOT NULL,
        log_index    INTEGER NOT NULL,
        PRIMARY KEY (id, device)
    ) WITHOUT ROWID;
    CREATE INDEX attestations_by_range ON attestations (chain_id, from_block, to_block);
    CREATE TABLE locations (
        id      BLOB    NOT NULL,
        device  TEXT    NOT NULL,
        locator BLOB    NOT NULL,
        PRIMARY KEY (id, device)
    ) WITHOUT ROWID;
    CREATE TABLE fleet_duty (
        id         BLOB    PRIMARY KEY,
        attest_tx  INTEGER,
        took_at    REAL,
        located    INTEGER NOT NULL DEFAULT 0,
        diverged   INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE fleet_scan (
        chain_id   INTEGER PRIMARY KEY,
        next_block INTEGER NOT NULL
    );
    """,
    # 4 -> 5: Clique (EIP-225) signer-set snapshots and signer-set changes (issue 12)
    """
    CREATE TABLE clique_snapshots (
        chain_id INTEGER NOT NULL,
        number   INTEGER NOT NULL,
        hash     BLOB    NOT NULL,
        snapshot BLOB    NOT NULL,
        PRIMARY KEY (chain_id, number)
    ) WITHOUT ROWID;
    CREATE TABLE signer_changes (
        chain_id     INTEGER NOT NULL,
        block_number INTEGER NOT NULL,
        block_hash   BLOB    NOT NULL,
        seq          INTEGER NOT NULL,
        kind         TEXT    NOT NULL CHECK (kind IN
                         ('genesis', 'authorized', 'dropped', 'checkpoint', 'start')),
        address      BLOB,
        voters       BLOB    NOT NULL,
        signers      BLOB    NOT NULL,
        PRIMARY KEY (chain_id, block_number, seq)
    ) WITHOUT ROWID;
    ALTER TABLE blocks ADD COLUMN in_turn INTEGER;
    ALTER TABLE alarms ADD COLUMN block_hash BLOB;
    ALTER TABLE alarms ADD COLUMN signer BLOB;
    """,
    # 5 -> 6: the capability report of each distinct
    # runtime code (edge.scoring.analysis, edge/store/capabilities.py). One row per
    # code_hash, replaced when a newer analyzer version analyses it again; status ok |
    # timeout | empty (a timeout is a result: it is not retried by the same analyzer);
    # flags: JSON list of flag names; evidence: JSON list of one object per flag.
    """
    CREATE TABLE capabilities (
        code_hash   BLOB    PRIMARY KEY,
        analyzer    TEXT    NOT NULL,
        status      TEXT    NOT NULL CHECK (status IN ('ok', 'timeout', 'empty')),
        flags       TEXT    NOT NULL,
        evidence    TEXT    NOT NULL,
        elapsed_ms  REAL    NOT NULL,
        analyzed_at REAL    NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX capabilities_by_analyzer ON capabilities (analyzer);
    """,
    # 6 -> 7: names (issue 10): "confirmed" (N deep) is not JSON-RPC's "finalized" tag;
    # last_block_hash is the one name of the hash of block to_block.
    # RENAME COLUMN (SQLite >= 3.25) also rewrites indexes and triggers that name the column.
    """
    ALTER TABLE blocks RENAME COLUMN final TO confirmed;
    ALTER TABLE checkpoints RENAME COLUMN last_hash TO last_block_hash;
    ALTER TABLE anchors RENAME COLUMN last_hash TO last_block_hash;
    ALTER TABLE attestations RENAME COLUMN last_hash TO last_block_hash;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
