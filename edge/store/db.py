"""The SQLite outbox: one aiosqlite connection in WAL mode, migrations, transactions,
and a size bound.

Durability model. Every state change is one SQLite transaction (``async with
outbox.transaction() as tx``). The outbox runs with ``synchronous=NORMAL`` in WAL mode:
a killed process never loses a committed transaction and never sees a torn one; a power
cut may roll back the last few *ingest* transactions, which is harmless because the
cursor rolls back with them and the data are read again from the chain. Anything whose
loss would matter after a power cut (a signed transaction about to be broadcast) must go
through :meth:`Outbox.transaction` with ``durable=True``, which commits with
``synchronous=FULL`` (an fsync of the WAL) before returning.

Checked at start. The outbox is a private file: created 0600 (its WAL and shared-memory
files inherit that mode) in a folder created 0700, and an existing one readable by
others is made 0600. A file that is not an outbox is refused before anything is
written to it: a directory, a 0-byte file (a truncated outbox must not silently become
a new, empty one: checkpoint and transaction history would be gone), a SQLite database
of another application (``PRAGMA application_id``) or holding foreign tables; the
first two cases are accepted with ``init=True`` (``edge init`` / ``edge run --init``).
Then ``PRAGMA quick_check`` must say ``ok``: a page of garbage is found at start, not
weeks later.

Size bound. ``max_bytes`` caps the database (main file + WAL). :meth:`Outbox.check_capacity`
raises :class:`edge.errors.OutboxFull` at the cap, and so does a transaction that hits
``SQLITE_FULL`` (disk full): the transaction is rolled back whole, so the writer can
pause and retry later; nothing is half-written and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from edge.errors import OutboxError, OutboxFull, SchemaError
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Outbox", "DbTx", "APPLICATION_ID"]

APPLICATION_ID = 0x45444745
"""``PRAGMA application_id`` of an edge outbox (ASCII "EDGE"; SQLite file format §1.3)."""

log = logging.getLogger("edge.outbox")


class DbTx:
    """A handle on an open outbox transaction (see :meth:`Outbox.transaction`).

    Thin on purpose: ``execute``/``executemany``/``fetchall``/``fetchone`` run on the
    outbox connection inside the transaction that yielded this handle.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        cur = await self._conn.execute(sql, params)
        n = cur.rowcount
        await cur.close()
        return n

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter row."""
        await self._conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query; return all rows as tuples."""
        async with self._conn.execute(sql, params) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run a query; return the first row as a tuple, or None."""
        async with self._conn.execute(sql, params) as cur:
            row = await cur.fetchone()
        return tuple(row) if row is not None else None


class Outbox:
    """The durable SQLite outbox (aiosqlite, WAL). An async context manager.

    Args:
        path: database file; its folder is created (0700) if missing.
        max_bytes: size cap of database + WAL in bytes (``None``: unbounded).
        init: accept a 0-byte file or a SQLite database holding foreign tables and
            make it an outbox (nothing in it is deleted).

    Raises (on enter):
        SchemaError: the file was written by a newer schema version.
        OutboxError: the path is a directory or its folder cannot be created; the file
            is empty or foreign (without ``init``), not a SQLite database, or fails
            ``PRAGMA quick_check``. The message names the file and the case.

    Usage::

        async with Outbox(Path("edge.sqlite"), max_bytes=1 << 30) as ob:
            async with ob.transaction() as tx:
                await tx.execute("INSERT ...", (...))
    """

    def __init__(self, path: Path | str, *, max_bytes: int | None = None, init: bool = False) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.init = init
        self._conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Outbox:
        self._prepare_file()
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as e:
            raise OutboxError(f"cannot open outbox {self.path}: {e}") from e
        self._conn = conn
        try:
            await conn.execute("PRAGMA busy_timeout=5000")
            await self._identify()
            await self._quick_check()
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await self._migrate()
            if await self._pragma("application_id") != APPLICATION_ID:
                await conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        except sqlite3.DatabaseError as e:
            await conn.close()
            self._conn = None
            raise OutboxError(f"outbox {self.path} is not a usable SQLite database: {e}") from e
        except BaseException:
            await conn.close()
            self._conn = None
            raise
        try:  # reads go to their own connection: they see committed data only (WAL snapshot)
            reader = await aiosqlite.connect(self.path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout=5000")
            await reader.execute("PRAGMA query_only=ON")
        except (sqlite3.Error, OSError) as e:
            await conn.close()
            self._conn = None
            raise OutboxError(f"cannot open a read connection to outbox {self.path}: {e}") from e
        self._reader = reader
        return self

    def _prepare_file(self) -> None:
        """Folder (0700 when made), directory/empty-file refusal, 0600 file mode."""
        p = self.path
        if p.is_dir():
            raise OutboxError(f"outbox {p} is a directory, not a file (outbox.path must name a file)")
        folder = p.parent
        if not folder.is_dir():
            if folder.exists() or folder.is_symlink():
                raise OutboxError(f"cannot create the outbox folder {folder}: a file of that name is in the way")
            try:
                folder.mkdir(mode=0o700, parents=True)
            except OSError as e:
                raise OutboxError(f"cannot create the outbox folder {folder}: {e.strerror or e}") from e
        if not p.exists():
            self._create(p)
            return
        side = p.with_name(f".{p.name}.creating")
        if side.exists():  # left by a kill between link and unlink: the outbox is whole
            side.unlink(missing_ok=True)
        if not self.init and p.stat().st_size == 0:
            raise OutboxError(
                f"outbox {p} is an empty file (0 bytes): a truncated outbox? Refusing to start "
                "afresh over it (its history would be gone); restore it, or run with --init "
                "if this device is new"
            )
        for suffix in ("", "-wal", "-shm"):
            f = Path(f"{p}{suffix}")
            try:
                if stat.S_IMODE(f.stat().st_mode) & 0o077:
                    os.chmod(f, 0o600)
                    log.warning("outbox file %s was readable by others: made private (0600)", f)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise OutboxError(f"outbox {f}: cannot make it private: {e.strerror or e}") from e

    @staticmethod
    def _create(p: Path) -> None:
        """A new outbox appears whole or not at all: a SQLite file with the outbox's
        application_id is made 0600 under a side name, fsynced, then linked into place
        (a kill in between leaves no 0-byte outbox behind, which a restart would refuse)."""
        side = p.with_name(f".{p.name}.creating")
        try:
            fd = os.open(side, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            os.fchmod(fd, 0o600)
            os.close(fd)
            con = sqlite3.connect(side)
            try:
                con.execute(f"PRAGMA application_id={APPLICATION_ID}")
                con.commit()
            finally:
                con.close()
            fd = os.open(side, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(side, p)
            except FileExistsError:
                pass  # made meanwhile by someone else: it is checked as an existing file
            os.unlink(side)
        except (OSError, sqlite3.Error) as e:
            raise OutboxError(f"cannot create outbox {p}: {getattr(e, 'strerror', None) or e}") from e

    async def _pragma(self, name: str) -> int:
        async with self.conn.execute(f"PRAGMA {name}") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _identify(self) -> None:
        """Refuse a SQLite database that is not an outbox (see the module doc)."""
        app = await self._pragma("application_id")
        if app == APPLICATION_ID:
            return
        if app != 0:
            raise OutboxError(
                f"outbox {self.path} is a database of another application (application_id "
                f"0x{app:08x}): refusing to touch it; point outbox.path elsewhere"
            )
        version = await self._pragma("user_version")
        async with self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ) as cur:
            tables = [str(r[0]) for r in await cur.fetchall()]
        if not tables or (version >= 1 and "cursor" in tables):  # new, or made before application_id
            return
        if not self.init:
            raise OutboxError(
                f"outbox {self.path} is not an edge outbox (it holds tables {', '.join(tables[:5])}"
                f"{' ...' if len(tables) > 5 else ''}): refusing to write into it; point outbox.path "
                "elsewhere, or run with --init to add the outbox tables to it"
            )

    async def _quick_check(self) -> None:
        """``PRAGMA quick_check``: page and b-tree structure (O(size), no index cross-check)."""
        try:
            async with self.conn.execute("PRAGMA quick_check(5)") as cur:
                rows = [str(r[0]) for r in await cur.fetchall()]
        except sqlite3.DatabaseError as e:
            rows = [str(e)]
        if rows != ["ok"]:
            raise OutboxError(
                f"outbox {self.path} fails PRAGMA quick_check (corrupt): {'; '.join(rows)[:300]}; "
                "restore it from a backup or move it away (the agent re-reads the chain into a new one)"
            )

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        """The open aiosqlite connection. Raises OutboxError when closed."""
        if self._conn is None:
            raise OutboxError("outbox is not open (use it as an async context manager)")
        return self._conn

    async def _migrate(self) -> None:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"outbox {self.path} has schema version {version}, this agent knows up to "
                f"{SCHEMA_VERSION}: refusing to touch it (upgrade the agent)"
            )
        for v in range(version, SCHEMA_VERSION):
            # executescript commits implicitly; wrap the whole step in one transaction.
            await self.conn.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[v]}\nPRAGMA user_version={v + 1};\nCOMMIT;"
            )
            log.info("outbox %s migrated to schema version %d", self.path, v + 1)

    @asynccontextmanager
    async def transaction(self, *, durable: bool = False) -> AsyncIterator[DbTx]:
        """One atomic write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``).

        Transactions are serialised (one writer at a time within the process). Any
        exception inside the block rolls the whole transaction back and propagates.

        Args:
            durable: commit with ``synchronous=FULL`` (fsync before returning), for data
                whose loss on power cut matters (signed transactions before broadcast).

        Raises:
            OutboxFull: SQLite reported ``SQLITE_FULL`` (disk full); rolled back.
            OutboxError: any other SQLite error; rolled back.
        """
        async with self._lock:
            conn = self.conn
            if durable:
                await conn.execute("PRAGMA synchronous=FULL")
            try:
                try:
                    # BEGIN, COMMIT and ROLLBACK run to their end even when this task is
                    # cancelled meanwhile (the statement runs on aiosqlite's thread either
                    # way): a cancel never leaves a transaction open without an owner
                    await _settled(conn.execute("BEGIN IMMEDIATE"))
                    yield DbTx(conn)
                    await _settled(conn.execute("COMMIT"))
                except BaseException:
                    # SQLite may already have rolled back (e.g. on SQLITE_FULL)
                    if conn.in_transaction:
                        await _settled(_rollback_quietly(conn))
                    raise
            except sqlite3.OperationalError as e:
                if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                    raise OutboxFull(f"outbox {self.path}: disk full ({e}); rolled back") from e
                raise OutboxError(f"outbox {self.path}: {e}") from e
            except sqlite3.Error as e:
                raise OutboxError(f"outbox {self.path}: {e}") from e
            finally:
                if durable:
                    await conn.execute("PRAGMA synchronous=NORMAL")

    @property
    def reader(self) -> aiosqlite.Connection:
        """The read-only connection (``PRAGMA query_only``). Raises OutboxError when closed."""
        if self._reader is None:
            raise OutboxError("outbox is not open (use it as an async context manager)")
        return self._reader

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the read connection; return all rows. It sees every
        committed transaction and never another task's uncommitted one."""
        async with self.reader.execute(sql, params) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run a read-only query on the read connection; return the first row, or None."""
        async with self.reader.execute(sql, params) as cur:
            row = await cur.fetchone()
        return tuple(row) if row is not None else None

    def size_bytes(self) -> int:
        """Current size of the database file plus its WAL, in bytes."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except FileNotFoundError:
                pass
        return total

    def check_capacity(self) -> None:
        """Raise :class:`OutboxFull` when the outbox has reached ``max_bytes``.

        Writers call this before a batch; on OutboxFull they pause (backpressure) and
        retry later, so nothing is dropped.
        """
        if self.max_bytes is not None:
            size = self.size_bytes()
            if size >= self.max_bytes:
                raise OutboxFull(
                    f"outbox {self.path} holds {size / 2**20:.2f} MiB, at its limit of "
                    f"{self.max_bytes / 2**20:.2f} MiB (outbox.max_mib)"
                )


async def _settled(aw: Awaitable[Any]) -> Any:
    """``await aw`` to its end even if the caller is cancelled meanwhile; the cancel is
    raised after it. For statements that must not be abandoned half-way."""
    fut = asyncio.ensure_future(aw)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        while not fut.done():
            try:
                await asyncio.shield(fut)
            except asyncio.CancelledError:
                continue
        if not fut.cancelled():
            fut.exception()  # retrieved: the cancel is what the caller gets
        raise


async def _rollback_quietly(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass
