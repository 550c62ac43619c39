"""Device keystore (Web3 Secret Storage v3) and passphrase sources: edge.crypto.keys."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import coincurve
import pytest
from eth_account import Account

from edge.errors import CryptoError
from edge.crypto.keys import DeviceKey, create_keystore, load_key, read_passphrase

FAST = 2**12  # scrypt n for tests; production default is 2**18

# Test vector of the Web3 Secret Storage Definition (ethereum.org), PBKDF2-SHA-256.
SPEC_VECTOR = {
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "6087dab2f9fdbbfaddc31a909735c1e6"},
        "ciphertext": "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
        "kdf": "pbkdf2",
        "kdfparams": {
            "c": 262144,
            "dklen": 32,
            "prf": "hmac-sha256",
            "salt": "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd",
        },
        "mac": "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
SPEC_SECRET = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"
SPEC_ADDRESS = "008aeeda4d805471df9b2a5b0f38a0c3bcba786b"


def test_create_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    address = create_keystore(path, b"correct horse", work_factor=FAST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["version"] == 3 and doc["crypto"]["kdf"] == "scrypt"
    assert doc["crypto"]["kdfparams"]["n"] == FAST
    key = load_key(path, b"correct horse")
    assert key.address == address == Account.from_key(key.private_key).address
    pub = coincurve.PublicKey(key.public_key_compressed)
    assert bytes(pub.format(compressed=False)) == key.public_key_uncompressed
    assert key.public_key_compressed == bytes(
        coincurve.PrivateKey(key.private_key).public_key.format(compressed=True)
    )
    assert [p.name for p in tmp_path.iterdir()] == ["device.json"]  # no temp file left


def test_given_key_is_stored_and_pbkdf2_works(tmp_path: Path) -> None:
    secret = bytes.fromhex(SPEC_SECRET)
    path = tmp_path / "k.json"
    address = create_keystore(path, b"pw", kdf="pbkdf2", work_factor=1000, private_key=secret)
    assert address.lower() == "0x" + SPEC_ADDRESS
    assert load_key(path, b"pw").private_key == secret


def test_reads_the_web3_secret_storage_spec_vector(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC_VECTOR))
    key = load_key(path, b"testpassword")
    assert key.private_key.hex() == SPEC_SECRET
    assert key.address.lower() == "0x" + SPEC_ADDRESS


def test_reads_a_keystore_written_by_eth_account(tmp_path: Path) -> None:
    secret = os.urandom(32)
    path = tmp_path / "other.json"
    path.write_text(json.dumps(Account.encrypt(secret, "pässword", kdf="scrypt",
                                               iterations=FAST)))
    assert load_key(path, "pässword".encode()).private_key == secret


def test_repr_never_shows_the_private_key(tmp_path: Path) -> None:
    key = DeviceKey.from_private_key(bytes.fromhex(SPEC_SECRET))
    for text in (repr(key), str(key), f"{key!r}", repr([key])):
        assert SPEC_SECRET not in text
        assert "7a28b5ba" not in text and "private_key" not in text
        assert key.address in text


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    create_keystore(path, b"pw", work_factor=FAST)
    before = path.read_bytes()
    with pytest.raises(CryptoError, match="already exists, refusing to overwrite"):
        create_keystore(path, b"pw2", work_factor=FAST)
    assert path.read_bytes() == before
    assert load_key(path, b"pw")  # still the first key


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    create_keystore(path, b"right", work_factor=FAST)
    with pytest.raises(CryptoError, match=r"device.json: wrong passphrase \(MAC mismatch\)"):
        load_key(path, b"wrong")


def test_unreadable_or_malformed_keystores(tmp_path: Path) -> None:
    with pytest.raises(CryptoError, match="missing.json: unreadable"):
        load_key(tmp_path / "missing.json", b"pw")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CryptoError, match="bad.json: not JSON"):
        load_key(bad, b"pw")
    bad.write_text(json.dumps({"version": 4}))
    with pytest.raises(CryptoError, match="not a version 3 keystore"):
        load_key(bad, b"pw")
    bad.write_text(json.dumps({"version": 3, "crypto": {"kdf": "scrypt"}}))
    with pytest.raises(CryptoError, match="no 'kdfparams'"):
        load_key(bad, b"pw")


def test_tampered_keystores_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    create_keystore(path, b"pw", work_factor=FAST)
    doc = json.loads(path.read_text())
    greedy = json.loads(json.dumps(doc))
    greedy["crypto"]["kdfparams"]["n"] = 2**30  # would need 128 GiB: refused, not run
    path2 = tmp_path / "greedy.json"
    path2.write_text(json.dumps(greedy))
    with pytest.raises(CryptoError, match="scrypt parameters n=1073741824 r=8 p=1 refused"):
        load_key(path2, b"pw")
    doc["address"] = "11" * 20
    path3 = tmp_path / "addr.json"
    path3.write_text(json.dumps(doc))
    with pytest.raises(CryptoError, match="address field 1111.* does not match"):
        load_key(path3, b"pw")


def test_create_keystore_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(CryptoError, match="passphrase is empty"):
        create_keystore(tmp_path / "a.json", b"", work_factor=FAST)
    with pytest.raises(CryptoError, match="passphrase must be bytes"):
        create_keystore(tmp_path / "a.json", "pw", work_factor=FAST)  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="power of two"):
        create_keystore(tmp_path / "a.json", b"pw", work_factor=1000)
    with pytest.raises(CryptoError, match="cannot write in"):
        create_keystore(tmp_path / "no" / "dir" / "a.json", b"pw", work_factor=FAST)
    with pytest.raises(CryptoError, match="not below the secp256k1 order"):
        create_keystore(tmp_path / "a.json", b"pw", work_factor=FAST, private_key=bytes(32))
    assert not (tmp_path / "a.json").exists()


def test_binary_passphrase_round_trip(tmp_path: Path) -> None:
    pw = bytes(range(256))  # not UTF-8: e.g. a systemd-creds random credential
    path = tmp_path / "device.json"
    create_keystore(path, pw, work_factor=FAST)
    assert load_key(path, pw).address
    with pytest.raises(CryptoError, match="wrong passphrase"):
        load_key(path, pw[:-1])


# -------------------------------------------------------------- passphrase sources


def test_passphrase_from_file(tmp_path: Path) -> None:
    f = tmp_path / "pass"
    f.write_bytes(b"s3cret\n")
    assert read_passphrase(f"file:{f}") == b"s3cret"
    f.write_bytes(b"s3cret\r\n")
    assert read_passphrase(f"file:{f}") == b"s3cret"
    f.write_bytes(b" spaced  \n\n")  # only one newline stripped, spaces kept
    assert read_passphrase(f"file:{f}") == b" spaced  \n"
    with pytest.raises(CryptoError, match="passphrase file .*nope: unreadable"):
        read_passphrase(f"file:{tmp_path / 'nope'}")
    f.write_bytes(b"\n")
    with pytest.raises(CryptoError, match="is empty"):
        read_passphrase(f"file:{f}")


def test_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_TEST_PASS", "from-env")
    assert read_passphrase("env:EDGE_TEST_PASS") == b"from-env"
    monkeypatch.delenv("EDGE_TEST_PASS")
    with pytest.raises(CryptoError, match="environment variable EDGE_TEST_PASS is not set"):
        read_passphrase("env:EDGE_TEST_PASS")


def test_passphrase_from_systemd_credential(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "edge-keystore").write_bytes(b"cred-pass")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_passphrase("credential:edge-keystore") == b"cred-pass"
    with pytest.raises(CryptoError, match="systemd credential other .*unreadable"):
        read_passphrase("credential:other")
    with pytest.raises(CryptoError, match="must be a plain name"):
        read_passphrase("credential:../etc/passwd")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(CryptoError, match=r"\$CREDENTIALS_DIRECTORY is not set"):
        read_passphrase("credential:edge-keystore")


@pytest.mark.parametrize("spec", ["", "s3cret", "vault:x", "env:", "file:"])
def test_unknown_passphrase_source(spec: str) -> None:
    with pytest.raises(CryptoError, match="use file:PATH, env:NAME or credential:NAME"):
        read_passphrase(spec)


def test_passphrase_source_feeds_the_keystore(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_TEST_PASS", "via-env")
    path = tmp_path / "device.json"
    address = create_keystore(path, read_passphrase("env:EDGE_TEST_PASS"), work_factor=FAST)
    f = tmp_path / "pass"
    f.write_text("via-env\n")
    assert load_key(path, read_passphrase(f"file:{f}")).address == address
