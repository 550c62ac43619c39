"""Config and outbox edges (issue 11, item 7): each case once gave a traceback, a silent
acceptance or a silent loss; now each is a clear error naming what was wrong."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from edge.cli.main import main
from edge.config import parse_config
from edge.errors import ConfigError, CryptoError, OutboxError
from edge.store.db import Outbox

WS = "ws://127.0.0.1:8545"


def _cfg(**sections: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {"node": {"ws_url": WS}}
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    return raw


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("section,key", [
    ("node", "request_timeout_s"), ("node", "reconnect_max_s"), ("outbox", "max_mib"),
    ("scoring", "batch_wait_s"), ("log", "stats_interval_s"), ("gpio", "hold_s"),
])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308])
def test_non_finite_or_absurd_numbers_are_refused(section: str, key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"^config: {section}\.{key}: ") as e:
        parse_config(_cfg(**{section: {key: value}}))
    assert "finite" in str(e.value) or "<=" in str(e.value)


def test_nan_from_a_toml_file_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "edge.toml"
    p.write_text(f'[node]\nws_url = "{WS}"\nrequest_timeout_s = nan\n')
    assert main(["status", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert "node.request_timeout_s: must be a finite number" in err and "Traceback" not in err


@pytest.mark.parametrize("key,value", [("start_block", 10**23), ("confirmations", 2**63),
                                       ("confirmations", 10**7), ("start_block", 2**63)])
def test_block_numbers_and_confirmations_are_bounded(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=rf"ingest\.{key}: must be <="):
        parse_config(_cfg(ingest={key: value}))


def test_sane_values_still_load() -> None:
    cfg = parse_config(_cfg(ingest={"start_block": 2**40, "confirmations": 64}, node={"request_timeout_s": 30}))
    assert cfg.ingest.start_block == 2**40 and cfg.node.request_timeout_s == 30.0


# ------------------------------------------------------------------ URLs


@pytest.mark.parametrize("url,why", [
    ("ws://[::1", "not a valid URL"),
    ("ws://127.0.0.1:99999", "port"),
    ("ws://127.0.0.1:0", "port"),
    ("ws://127.0.0.1:85\x0045", "control character"),
    ("ws://127.0.0.1 :8545", "space"),
    ("ws://:8545", "no host"),
    ("ws://127.0.0.1:port", "port"),
])
def test_bad_urls_are_config_errors_naming_the_key(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=rf"^config: node\.ws_url: .*{why}"):
        parse_config({"node": {"ws_url": url}})
    raw = _cfg(fleet={"enabled": True, "attestations": "0x" + "11" * 20, "rpc_url": url.replace("ws", "http", 1)})
    with pytest.raises(ConfigError, match=r"^config: fleet\.rpc_url: "):
        parse_config(raw)


def test_bad_url_in_a_file_gives_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "edge.toml"
    p.write_text('[node]\nws_url = "ws://[::1"\n')
    assert main(["status", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge: config: node.ws_url:") and "Traceback" not in err and err.count("\n") == 1


def test_good_urls_load() -> None:
    for url in ("ws://127.0.0.1:8545", "wss://node.local/ws", "ws://[::1]:8546", "ws://localhost"):
        assert parse_config({"node": {"ws_url": url}}).node.ws_url == url


# ------------------------------------------------------------------ the outbox file


async def test_outbox_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match=r"is a directory"):
        async with Outbox(tmp_path):
            pass


async def test_outbox_under_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutboxError, match=r"cannot create the outbox folder"):
        async with Outbox(tmp_path / "afile" / "edge.sqlite"):
            pass


async def test_empty_outbox_file_is_refused_unless_init(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    db.write_bytes(b"")
    with pytest.raises(OutboxError, match=r"empty file \(0 bytes\).*--init"):
        async with Outbox(db):
            pass
    assert db.stat().st_size == 0, "refused means untouched"
    async with Outbox(db, init=True) as ob:
        assert await ob.fetchone("SELECT count(*) FROM blocks") == (0,)
    async with Outbox(db):  # now it is an outbox
        pass


async def test_foreign_sqlite_file_is_refused_unless_init(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, jpeg BLOB)")
    con.execute("INSERT INTO photos (jpeg) VALUES (x'ffd8')")
    con.commit()
    con.close()
    with pytest.raises(OutboxError, match=r"not an edge outbox.*photos.*--init"):
        async with Outbox(db):
            pass
    async with Outbox(db, init=True) as ob:
        assert await ob.fetchone("SELECT count(*) FROM photos") == (1,), "nothing of it is deleted"


async def test_outbox_of_an_older_agent_is_still_opened(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    async with Outbox(db) as ob:
        async with ob.transaction() as tx:
            await tx.execute("INSERT INTO codes (code_hash, code, size) VALUES (?,?,?)", (b"a" * 32, b"x", 1))
    con = sqlite3.connect(db)
    con.execute("PRAGMA application_id=0")  # what an outbox made before the id was set holds
    con.commit()
    con.close()
    async with Outbox(db) as ob:
        assert await ob.fetchone("SELECT count(*) FROM codes") == (1,)


def _corrupt(db: Path) -> None:
    con = sqlite3.connect(db)
    page = con.execute("PRAGMA page_size").fetchone()[0]
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    assert pages >= 4
    with open(db, "r+b") as fh:  # garbage over an interior page, header intact
        fh.seek(page * (pages - 2))
        fh.write(os.urandom(page))


async def _filled(db: Path) -> None:
    async with Outbox(db) as ob:
        async with ob.transaction() as tx:
            await tx.executemany("INSERT INTO codes (code_hash, code, size) VALUES (?,?,?)",
                                 [(os.urandom(32), os.urandom(900), 900) for _ in range(40)])
        await ob.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def test_corrupt_page_is_found_at_start(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    await _filled(db)
    _corrupt(db)
    with pytest.raises(OutboxError, match=r"fails PRAGMA quick_check"):
        async with Outbox(db):
            pass


def test_status_on_a_corrupt_outbox_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "edge.sqlite"
    asyncio.run(_filled(db))
    _corrupt(db)
    p = tmp_path / "edge.toml"
    p.write_text(f'[node]\nws_url = "{WS}"\n[outbox]\npath = "{db.name}"\n')
    assert main(["status", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("edge: outbox") and "quick_check" in err


async def test_outbox_files_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state" / "edge"
    db = state / "edge.sqlite"
    old = os.umask(0o022)
    try:
        async with Outbox(db) as ob:
            async with ob.transaction() as tx:
                await tx.execute("INSERT INTO codes (code_hash, code, size) VALUES (?,?,?)", (b"a" * 32, b"x", 1))
            for f in (db, Path(f"{db}-wal")):
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
            assert stat.S_IMODE(state.stat().st_mode) == 0o700
    finally:
        os.umask(old)


async def test_existing_readable_outbox_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    async with Outbox(db):
        pass
    os.chmod(db, 0o644)
    async with Outbox(db):
        assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_run_init_initialises_an_empty_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "edge.sqlite"
    db.write_bytes(b"")
    p = tmp_path / "edge.toml"
    p.write_text(f'[node]\nws_url = "{WS}"\n[outbox]\npath = "{db.name}"\n')
    assert main(["status", "--config", str(p)]) == 2
    assert "--init" in capsys.readouterr().err
    assert main(["init", "--config", str(p)]) == 0
    assert main(["status", "--config", str(p), "--json"]) == 0


# ------------------------------------------------------------------ passphrases


@pytest.mark.parametrize("weak", [b"a", b"1234", b"password", b"correcthorse", b"aaaaaaaaaaaaaaaaaaaa",
                                  b"Password2024!"])
def test_weak_passphrases_are_refused(weak: bytes) -> None:
    from edge.crypto.keys import check_passphrase_strength

    with pytest.raises(CryptoError, match=r"passphrase too weak"):
        check_passphrase_strength(weak)


def test_strong_passphrases_pass() -> None:
    from edge.crypto.keys import check_passphrase_strength, generate_passphrase

    check_passphrase_strength(b"vivid-quartz-lantern-97-orbit-sable")
    check_passphrase_strength(os.urandom(32))  # a binary secret from a credential store
    g = generate_passphrase()
    assert len(g) >= 20 and g != generate_passphrase()
    check_passphrase_strength(g.encode())


def test_keys_new_refuses_a_weak_passphrase(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_TEST_PW", "password")
    ks = tmp_path / "device.json"
    assert main(["keys", "new", "--keystore", str(ks), "--passphrase", "env:EDGE_TEST_PW"]) == 2
    err = capsys.readouterr().err
    assert "passphrase too weak" in err and "--generate" in err and not ks.exists()


def test_keys_new_generate_writes_a_private_passphrase_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    from edge.crypto.keys import load_key, read_passphrase

    ks, pw = tmp_path / "device.json", tmp_path / "passphrase"
    assert main(["keys", "new", "--keystore", str(ks), "--passphrase", f"file:{pw}", "--generate",
                 "--work-factor", "4096"]) == 0
    address = capsys.readouterr().out.strip()
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600
    assert load_key(ks, read_passphrase(f"file:{pw}")).address == address
    assert main(["keys", "new", "--keystore", str(tmp_path / "b.json"), "--passphrase", f"file:{pw}",
                 "--generate"]) == 2, "an existing passphrase file is never overwritten"


async def test_a_new_outbox_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    side = tmp_path / ".edge.sqlite.creating"
    side.write_bytes(b"")  # what a kill -9 during the creation of a new outbox leaves
    async with Outbox(db) as ob:
        assert await ob.fetchone("PRAGMA application_id") == (0x45444745,)
    assert not side.exists() and db.stat().st_size > 0
