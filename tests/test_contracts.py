"""contracts/: deterministic build, stale-artifact check, and the contracts on a real anvil."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from eth_hash.auto import keccak

from edge.contracts.artifacts import (
    DEPLOYER_PREFIX_LEN,
    artifacts_dir,
    deployer_init_code,
    load_artifact,
)
from edge.errors import BytecodeError, ContractBuildError

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "contracts"
BUILD = CONTRACTS / "build.mjs"
ANVIL = REPO / "node_modules" / ".bin" / "anvil"


def _node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(BUILD), *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    """A temp copy of contracts/ (sources and committed artifacts, no build script)."""
    dst = tmp_path / "contracts"
    dst.mkdir()
    for sol in CONTRACTS.glob("*.sol"):
        shutil.copy2(sol, dst / sol.name)
    shutil.copytree(CONTRACTS / "artifacts", dst / "artifacts")
    return dst


# --------------------------------------------------------------------------- build


@pytest.mark.slow
def test_check_passes_on_committed_tree() -> None:
    res = _node("--check")
    assert res.returncode == 0, res.stderr
    assert "up to date" in res.stdout


@pytest.mark.slow
def test_rebuild_reproduces_committed_artifacts_byte_for_byte(contracts_copy: Path) -> None:
    shutil.rmtree(contracts_copy / "artifacts")
    res = _node("--dir", str(contracts_copy))
    assert res.returncode == 0, res.stderr
    built = sorted(p.name for p in (contracts_copy / "artifacts").glob("*.json"))
    committed = sorted(p.name for p in (CONTRACTS / "artifacts").glob("*.json"))
    assert built == committed
    assert {"CrudStore.json", "Spawner.json"} <= set(built)
    for name in built:
        assert (contracts_copy / "artifacts" / name).read_bytes() == (
            CONTRACTS / "artifacts" / name
        ).read_bytes(), name


@pytest.mark.slow
def test_check_fails_naming_the_changed_source(contracts_copy: Path) -> None:
    sol = contracts_copy / "CrudStore.sol"
    sol.write_text(sol.read_text().replace("returns (bool)", "returns (bool ok)"))
    res = _node("--check", "--dir", str(contracts_copy))
    assert res.returncode == 1
    assert "differs:" in res.stderr and "CrudStore.json" in res.stderr
    assert "Spawner.json" not in res.stderr
    # A build brings the copy back in line, and then --check passes.
    assert _node("--dir", str(contracts_copy)).returncode == 0
    res = _node("--check", "--dir", str(contracts_copy))
    assert res.returncode == 0, res.stderr


def test_check_reports_missing_and_extra_and_new_sources(contracts_copy: Path) -> None:
    (contracts_copy / "artifacts" / "Spawner.json").unlink()
    (contracts_copy / "artifacts" / "Gone.json").write_text("{}\n")
    (contracts_copy / "Extra.sol").write_text(
        "// SPDX-License-Identifier: Apache-2.0\npragma solidity ^0.8.24;\n"
        "contract Extra { function one() external pure returns (uint256) { return 1; } }\n"
    )
    res = _node("--check", "--dir", str(contracts_copy))
    assert res.returncode == 1
    assert "missing:" in res.stderr and "Spawner.json" in res.stderr
    assert "missing:" in res.stderr and "Extra.json" in res.stderr
    assert "extra:" in res.stderr and "Gone.json" in res.stderr
    assert "CrudStore.json" not in res.stderr
    # The build writes the new artifact and drops the stale one.
    assert _node("--dir", str(contracts_copy)).returncode == 0
    names = {p.name for p in (contracts_copy / "artifacts").glob("*.json")}
    committed = {p.name for p in (CONTRACTS / "artifacts").glob("*.json")}
    assert names == committed | {"Extra.json"}


def test_compile_error_prints_solc_message_and_fails(contracts_copy: Path) -> None:
    (contracts_copy / "Broken.sol").write_text(
        "pragma solidity ^0.8.24;\ncontract Broken { function f( }\n"
    )
    before = {p.name: p.read_bytes() for p in (contracts_copy / "artifacts").iterdir()}
    res = _node("--dir", str(contracts_copy))
    assert res.returncode == 2
    assert "ParserError" in res.stderr and "Broken.sol" in res.stderr
    after = {p.name: p.read_bytes() for p in (contracts_copy / "artifacts").iterdir()}
    assert after == before  # nothing written on a failed compile


def test_artifact_fields() -> None:
    data = json.loads((CONTRACTS / "artifacts" / "CrudStore.json").read_text())
    assert list(data) == [
        "contractName", "sourceName", "compiler", "abi", "bytecode",
        "deployedBytecode", "sourceSha256",
    ]
    assert data["sourceName"] == "contracts/CrudStore.sol"
    assert data["compiler"].startswith("0.8.37+")
    art = load_artifact("CrudStore")
    assert art.bytecode.hex() == data["bytecode"][2:]
    assert art.deployed_bytecode and art.deployed_bytecode in art.bytecode


# ----------------------------------------------------------------- python loader


def test_load_artifact_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ContractBuildError, match="identifier"):
        load_artifact("../etc/passwd")
    monkeypatch.setenv("EDGE_CONTRACTS_DIR", str(tmp_path))
    assert artifacts_dir() == tmp_path / "artifacts"
    with pytest.raises(ContractBuildError, match="Nope.json"):
        load_artifact("Nope")
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "Bad.json").write_text("{not json")
    with pytest.raises(ContractBuildError, match="not valid JSON"):
        load_artifact("Bad")
    (tmp_path / "artifacts" / "Odd.json").write_text(
        json.dumps({"contractName": "Odd", "abi": [], "bytecode": "0x123",
                    "deployedBytecode": "0x"})
    )
    with pytest.raises(ContractBuildError, match="'bytecode'"):
        load_artifact("Odd")


def test_deployer_init_code_layout_and_limits() -> None:
    runtime = bytes(range(1, 40))
    code = deployer_init_code(runtime)
    assert len(code) == DEPLOYER_PREFIX_LEN + len(runtime)
    assert code[:3] == b"\x61\x00\x27" and code[DEPLOYER_PREFIX_LEN:] == runtime
    assert deployer_init_code(b"\x00" * 0xFFFF)[1:3] == b"\xff\xff"
    with pytest.raises(BytecodeError, match="65536"):
        deployer_init_code(b"\x00" * 0x10000)
    with pytest.raises(BytecodeError, match="EIP-3541"):
        deployer_init_code(b"\xef\x00")
    with pytest.raises(BytecodeError, match="str"):
        deployer_init_code("0x6000")  # type: ignore[arg-type]


# --------------------------------------------------------------------- on anvil


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    req = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return "result" in json.loads(resp.read())
    except OSError:
        return False


@pytest.fixture(scope="module")
def w3() -> Iterator[Web3]:
    """A Web3 on a fresh anvil (automine) on a free loopback port; killed afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--chain-id", "31337"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"anvil exited with {proc.returncode}: {err}")
            if time.monotonic() > deadline:
                pytest.fail("anvil did not answer within 30 s")
            time.sleep(0.05)
        web3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        web3.eth.default_account = web3.eth.accounts[0]
        yield web3
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _deploy(w3: Web3, name: str) -> Contract:
    art = load_artifact(name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact())
    assert receipt["status"] == 1
    address = cast(ChecksumAddress, receipt["contractAddress"])
    assert _code(w3, address) == art.deployed_bytecode
    return w3.eth.contract(address=address, abi=art.abi)


def _keccak(data: bytes = b"", *, text: str | None = None) -> bytes:
    return bytes(Web3.keccak(text=text) if text is not None else Web3.keccak(data))


def _code(w3: Web3, address: str) -> bytes:
    return bytes(w3.eth.get_code(Web3.to_checksum_address(address)))


def _one(events: Any) -> Any:
    """The args of the single event in ``events`` (asserts there is exactly one)."""
    assert len(events) == 1, events
    return events[0]["args"]


def _custom_error(sig: str, *words: bytes) -> str:
    return "0x" + (_keccak(text=sig)[:4] + b"".join(words)).hex()


def _word(v: bytes | int | str) -> bytes:
    if isinstance(v, int):
        return v.to_bytes(32, "big")
    if isinstance(v, str):  # address
        return bytes.fromhex(v[2:]).rjust(32, b"\x00")
    return v.rjust(32, b"\x00")


def _key(label: str) -> bytes:
    return _keccak(text=label)  # exactly 32 bytes


def test_crud_store_lifecycle(w3: Web3) -> None:
    store = _deploy(w3, "CrudStore")
    accounts = list(w3.eth.accounts)
    me, other = accounts[0], accounts[1]
    k = _key("crud/one")
    long_value = bytes(range(256)) * 3  # spans many storage slots

    assert store.functions.exists(k).call() is False
    with pytest.raises(ContractCustomError) as exc:
        store.functions.read(k).call()
    assert exc.value.data == _custom_error("KeyMissing(bytes32)", k)

    # create
    rc = w3.eth.wait_for_transaction_receipt(store.functions.create(k, b"hello").transact())
    ev = _one(store.events.Created().process_receipt(rc))
    assert ev.key == k and ev.by == me and ev.value == b"hello"
    assert store.functions.read(k).call() == b"hello"
    assert store.functions.exists(k).call() is True
    assert store.functions.writerOf(k).call() == me
    with pytest.raises(ContractCustomError) as exc:
        store.functions.create(k, b"again").transact()
    assert exc.value.data == _custom_error("KeyExists(bytes32)", k)

    # update (only by the writer)
    rc = w3.eth.wait_for_transaction_receipt(store.functions.update(k, long_value).transact())
    ev = _one(store.events.Updated().process_receipt(rc))
    assert ev.key == k and ev.by == me and ev.value == long_value
    assert store.functions.read(k).call() == long_value
    with pytest.raises(ContractCustomError) as exc:
        store.functions.update(k, b"x").transact({"from": other})
    assert exc.value.data == _custom_error("NotWriter(bytes32,address)", k, _word(me))
    with pytest.raises(ContractCustomError) as exc:
        store.functions.remove(k).transact({"from": other})
    assert exc.value.data == _custom_error("NotWriter(bytes32,address)", k, _word(me))

    # delete
    rc = w3.eth.wait_for_transaction_receipt(store.functions.remove(k).transact())
    ev = _one(store.events.Deleted().process_receipt(rc))
    assert ev.key == k and ev.by == me
    assert store.functions.exists(k).call() is False
    assert store.functions.writerOf(k).call() == "0x" + "00" * 20
    missing = _custom_error("KeyMissing(bytes32)", k)
    for fn in (store.functions.update(k, b"x"), store.functions.remove(k)):
        with pytest.raises(ContractCustomError) as exc:
            fn.transact()
        assert exc.value.data == missing

    # a deleted key can be created again, by anyone; empty values exist
    w3.eth.wait_for_transaction_receipt(
        store.functions.create(k, b"").transact({"from": other})
    )
    assert store.functions.exists(k).call() is True
    assert store.functions.read(k).call() == b""
    assert store.functions.writerOf(k).call() == other


def test_crud_store_create_many(w3: Web3) -> None:
    store = _deploy(w3, "CrudStore")
    keys = [_key(f"chunk/{i}") for i in range(5)]
    values = [bytes([i]) * (i * 40) for i in range(5)]
    rc = w3.eth.wait_for_transaction_receipt(
        store.functions.createMany(keys, values).transact()
    )
    events = store.events.Created().process_receipt(rc)
    assert [(e.args.key, e.args.value) for e in events] == list(zip(keys, values))
    assert [store.functions.read(k).call() for k in keys] == values

    with pytest.raises(ContractCustomError) as exc:
        store.functions.createMany(keys[:2], values[:1]).transact()
    assert exc.value.data == _custom_error("LengthMismatch(uint256,uint256)", _word(2), _word(1))

    # all or nothing: a duplicate in the batch reverts the whole batch
    fresh = _key("chunk/fresh")
    with pytest.raises(ContractCustomError) as exc:
        store.functions.createMany([fresh, keys[3]], [b"a", b"b"]).transact()
    assert exc.value.data == _custom_error("KeyExists(bytes32)", keys[3])
    assert store.functions.exists(fresh).call() is False


def test_crud_store_publish_many(w3: Web3) -> None:
    """publishMany stores writer, block and keccak256 per key and carries the value in
    its Published log; published keys are taken for create and publish, never updated."""
    store = _deploy(w3, "CrudStore")
    me = w3.eth.accounts[0]
    keys = [_key(f"blob/{i}") for i in range(4)]
    values = [os.urandom(n) for n in (0, 31, 100, 2048)]
    rc = w3.eth.wait_for_transaction_receipt(store.functions.publishMany(keys, values).transact())
    events = store.events.Published().process_receipt(rc)
    assert [(e.args.key, e.args.by, e.args.value) for e in events] == [(k, me, v) for k, v in zip(keys, values)]
    for k, v in zip(keys, values):
        assert store.functions.publication(k).call() == [me, rc.blockNumber, keccak(v)]
        assert store.functions.exists(k).call() is True and store.functions.writerOf(k).call() == me
    taken = _custom_error("KeyExists(bytes32)", keys[1])
    for fn in (store.functions.publishMany([keys[1]], [b"x"]), store.functions.create(keys[1], b"x"),
               store.functions.createMany([keys[1]], [b"x"])):
        with pytest.raises(ContractCustomError) as exc:
            fn.transact()
        assert exc.value.data == taken
    missing = _custom_error("KeyMissing(bytes32)", keys[1])
    for fn in (store.functions.update(keys[1], b"x"), store.functions.remove(keys[1])):
        with pytest.raises(ContractCustomError) as exc:
            fn.transact()
        assert exc.value.data == missing
    created = _key("created")
    w3.eth.wait_for_transaction_receipt(store.functions.create(created, b"v").transact())
    with pytest.raises(ContractCustomError) as exc:
        store.functions.publishMany([_key("fresh"), created], [b"a", b"b"]).transact()
    assert exc.value.data == _custom_error("KeyExists(bytes32)", created)
    assert store.functions.exists(_key("fresh")).call() is False  # all or nothing
    with pytest.raises(ContractCustomError) as exc:
        store.functions.publication(created).call()
    assert exc.value.data == _custom_error("KeyMissing(bytes32)", created)
    with pytest.raises(ContractCustomError) as exc:
        store.functions.publishMany(keys[:2], values[:1]).transact()
    assert exc.value.data == _custom_error("LengthMismatch(uint256,uint256)", _word(2), _word(1))


def _children(spawner: Contract, receipt: Any) -> list[str]:
    return [e.args.child for e in spawner.events.Spawned().process_receipt(receipt)]


def test_spawner_creates_children(w3: Web3) -> None:
    spawner = _deploy(w3, "Spawner")
    runtime = bytes.fromhex("602a60005260206000f3")  # returns uint256(42)

    # CREATE: child address is _keccak(rlp([spawner, nonce]))[12:]; first nonce is 1
    rc = w3.eth.wait_for_transaction_receipt(
        spawner.functions.spawn(deployer_init_code(runtime)).transact()
    )
    (child,) = _children(spawner, rc)
    assert child == w3.to_checksum_address(
        _keccak(b"\xd6\x94" + bytes.fromhex(spawner.address[2:]) + b"\x01")[12:]
    )
    assert _code(w3, child) == runtime
    assert w3.eth.call({"to": child}) == (42).to_bytes(32, "big")

    # CREATE2 (EIP-1014): _keccak(0xff ++ spawner ++ salt ++ _keccak(init))[12:]
    init = deployer_init_code(runtime + b"\x00")
    salt = _key("salt")
    rc = w3.eth.wait_for_transaction_receipt(spawner.functions.spawn2(init, salt).transact())
    (child2,) = _children(spawner, rc)
    expected = _keccak(b"\xff" + bytes.fromhex(spawner.address[2:]) + salt + _keccak(init))[12:]
    assert child2 == w3.to_checksum_address(expected)
    assert _code(w3, child2) == runtime + b"\x00"
    with pytest.raises(ContractCustomError) as exc:  # same salt and code: collision
        spawner.functions.spawn2(init, salt).call()
    assert exc.value.data == _custom_error("SpawnFailed()")

    # spawnMany: one child per init code, each with its own code, including a full contract
    codes = [bytes([0x60, i, 0x00]) for i in range(1, 4)]
    crud = load_artifact("CrudStore")
    rc = w3.eth.wait_for_transaction_receipt(
        spawner.functions.spawnMany(
            [deployer_init_code(c) for c in codes] + [crud.bytecode]
        ).transact()
    )
    kids = _children(spawner, rc)
    assert len(set(kids)) == 4
    assert [_code(w3, a) for a in kids] == codes + [crud.deployed_bytecode]


def test_spawner_bubbles_init_code_revert(w3: Web3) -> None:
    spawner = _deploy(w3, "Spawner")
    # init code: mstore(0, 0xdead...) ; revert(0, 32)
    reason = b"\xde\xad" + b"\x00" * 30
    init = b"\x7f" + reason + b"\x60\x00\x52\x60\x20\x60\x00\xfd"
    with pytest.raises(ContractCustomError) as exc:
        spawner.functions.spawn(init).call()
    assert exc.value.data == "0x" + reason.hex()


def test_deployer_init_code_deploys_exact_runtime(w3: Web3) -> None:
    spawner_runtime = load_artifact("Spawner").deployed_bytecode
    for runtime in (b"", b"\x00", spawner_runtime, bytes(range(256)) * 40):  # 10,240 B
        tx = w3.eth.send_transaction({"data": deployer_init_code(runtime)})
        rc = w3.eth.wait_for_transaction_receipt(tx)
        assert rc["status"] == 1
        assert _code(w3, str(rc["contractAddress"])) == runtime

