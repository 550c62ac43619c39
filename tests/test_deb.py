"""The .deb (`make deb`, image/deb/) runs the install script of the image builders.

Fast, no root, no qemu: the postinst's call of install-appliance.sh and the steps it
selects against the builders' (which run them all), the maintainer scripts against what
those steps install, and a .deb built from a small staged folder with dpkg-deb (fields,
files, owners, reproducibility). `make deb-test` installs the real one in the arm64 base
root file system under qemu-user.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_image_build import BUILDERS, SCRIPT, _invocations

REPO = Path(__file__).resolve().parents[1]
DEB = REPO / "image" / "deb"
POSTINST = DEB / "postinst"
DEB_DIST = "/usr/share/edge/dist"
# Decided per step (image/deb/postinst says why): what apt install does on an OS that runs.
DEB_STEPS = ["users", "venv", "units", "config", "manifest"]
NOT_FROM_THE_DEB = {"lockdown", "hostname", "journald", "clock", "watchdog", "growroot", "network"}
OPT_IN = ["journald", "clock", "watchdog"]


def _dry_run(args: list[str], dist: Path) -> list[str]:
    out = subprocess.run(["bash", str(SCRIPT), "--dry-run", *args[:-1], str(dist)],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def _dist(tmp: Path) -> Path:
    d = tmp / "dist"
    d.mkdir()
    (d / "build.conf").write_text("EDGE_HOSTNAME=edge-gateway\nADMIN_USER=admin\n")
    return d


def test_the_postinst_calls_the_builders_install_script_once_with_the_deb_steps(tmp_path: Path) -> None:
    calls = _invocations(POSTINST)
    assert calls == [["--steps", ",".join(DEB_STEPS), DEB_DIST]], calls
    assert f"bash {DEB_DIST}/appliance/install-appliance.sh" in POSTINST.read_text()
    dist = _dist(tmp_path)
    listed = subprocess.run(["bash", str(SCRIPT), "--list"], capture_output=True, text=True, check=True).stdout.split()
    # Each builder's call selects every step; the postinst's, the deb's, in --list order.
    for name, path in BUILDERS.items():
        (args,) = _invocations(path)
        assert _dry_run(args, dist) == listed, name
    assert _dry_run(calls[0], dist) == DEB_STEPS
    assert set(listed) - set(DEB_STEPS) == NOT_FROM_THE_DEB
    # The opt-in command of README.Debian selects real steps, none the postinst ran.
    readme = (DEB / "README.Debian").read_text()
    m = re.search(r"install-appliance\.sh \\\s*--steps (\S+) /usr/share/edge/dist", readme)
    assert m and m.group(1).split(",") == OPT_IN
    assert _dry_run(["--steps", m.group(1), DEB_DIST], dist) == OPT_IN
    for step in NOT_FROM_THE_DEB:
        assert step in readme and step in POSTINST.read_text(), f"{step}: say why the .deb does not run it"


def test_steps_option_refuses_unknown_or_empty_lists(tmp_path: Path) -> None:
    dist = _dist(tmp_path)
    for bad, said in ((["--steps", "users,bogus"], "no step named 'bogus'"), (["--steps", ""], "needs a list"),
                      (["--steps", ","], "names no step")):
        p = subprocess.run(["bash", str(SCRIPT), "--dry-run", *bad, str(dist)], capture_output=True, text=True)
        assert p.returncode != 0 and said in p.stderr, (bad, p.stderr)


def _step_body(text: str, step: str) -> str:
    m = re.search(rf"^step_{step}\(\) \{{[^\n]*\n(.*?)^\}}", text, re.M | re.S)
    assert m, step
    return m.group(1)


def _written_paths(step: str) -> set[str]:
    """Absolute paths a step of install-appliance.sh installs or writes (variables resolved)."""
    body = _step_body(SCRIPT.read_text(), step)
    body = body.replace('"$VENV"', "/opt/edge/venv").replace("$VENV", "/opt/edge/venv")
    body = body.replace('"$FIRM', '"/boot/firmware').replace("$FIRM", "/boot/firmware")
    paths: set[str] = set()
    for line in body.replace("\\\n", " ").splitlines():
        for cmd in re.split(r"\|\||&&|;", line):
            words = [w.strip('"') for w in cmd.split()]
            if words[:1] == ["install"] and "-d" not in words:
                paths.add(words[-1])
        paths.update(re.findall(r"(?<![0-9&])>(/[\w./-]+)", line))
    return {p for p in paths if p.startswith("/") and not p.startswith("/dev/")}


def _removed(script: str) -> set[str]:
    """The paths the rm commands of a shell script text name."""
    lines = script.replace("\\\n", " ").splitlines()
    return set(re.findall(r"(/[\w./-]+)", " ".join(ln for ln in lines if ln.lstrip().startswith("rm "))))


def test_postrm_removes_what_the_deb_steps_and_the_opt_ins_install() -> None:
    postrm = (DEB / "postrm").read_text()
    cut = postrm.index('if [ "$1" = purge ]')
    removed, on_remove = _removed(postrm), _removed(postrm[:cut])
    written: set[str] = set()
    for step in [*DEB_STEPS, "journald", "watchdog"]:
        written |= _written_paths(step)
    assert {"/etc/systemd/system/edge.service", "/opt/edge/requirements-aarch64.txt", "/boot/firmware/edge.toml",
            "/usr/share/edge/packages.tsv", "/etc/systemd/journald.conf.d/50-edge.conf"} <= written, written
    for path in sorted(written):
        parents = [path, *(str(p) for p in Path(path).parents)]
        assert any(p in removed for p in parents), f"postrm leaves {path} (written by install-appliance.sh)"
    # The program on remove; the keystore, its passphrase and the config only on purge.
    assert {"/opt/edge/venv", "/etc/systemd/system/edge.service", "/usr/local/sbin/edge-firstboot"} <= on_remove
    for state in ("/var/lib/edge", "/etc/edge", "/boot/firmware/edge.toml"):
        assert state in removed and state not in on_remove, state


def _shlib() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shlib_depends", DEB / "shlib_depends.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ext(module: str) -> Path:
    mod = __import__(module)
    path = getattr(mod, "__file__", None)
    if not path or not path.endswith(".so"):
        pytest.skip(f"{module} is built into this Python")
    return Path(path)


def _wheel(folder: Path, name: str, so: Path) -> None:
    import zipfile
    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as zf:
        zf.write(so, f"pkg/{so.name}")


@pytest.mark.skipif(shutil.which("readelf") is None, reason="no readelf (binutils)")
def test_shared_library_depends_are_derived_from_the_wheels(tmp_path: Path) -> None:
    shlib = _shlib()
    _wheel(tmp_path / "ok", "z-1-py3-none-any.whl", _ext("zlib"))
    deps = shlib.depends(tmp_path / "ok")
    assert "zlib1g" in deps and any(re.fullmatch(r"libc6 \(>= 2\.\d+\)", d) for d in deps), deps
    # A system library it has no package for fails the build, naming it.
    _wheel(tmp_path / "bad", "s-1-py3-none-any.whl", _ext("_ssl"))
    with pytest.raises(shlib.UnmappedSoname, match=r"lib(ssl|crypto)\.so\.3 \(needed by s-1"):
        shlib.depends(tmp_path / "bad")
    assert shlib.depends(tmp_path) == []


def _build(tmp: Path, out: str) -> Path:
    dist = tmp / "staged"
    if not dist.exists():
        shutil.copytree(REPO / "image" / "appliance", dist / "appliance")
        for f in ("edge.service", "edge.toml", "requirements-aarch64.txt"):
            shutil.copy(REPO / "image" / f, dist / f)
        (dist / "wheels").mkdir()
        (dist / "build.conf").write_text("EDGE_HOSTNAME=edge-gateway\nADMIN_USER=admin\nVERSION=0\n")
        (dist / "authorized_keys").write_text("ssh-ed25519 AAAA test\n")
        with tarfile.open(dist / "edge_gateway-0.tar.gz", "w:gz") as tf:
            tf.add(REPO / "setup.py", "edge_gateway-0/setup.py")
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "DEB_OUT": str(tmp / out), "SOURCE_DATE_EPOCH": "1764547200",
           "DEB_MAINTAINER": "Edge gateway maintainers <maintainers@example.org>", "HOME": str(tmp)}
    p = subprocess.run(["bash", str(DEB / "build-deb.sh"), "--dist", str(dist)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return Path(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("readelf") is None, reason="no dpkg-deb/readelf")
def test_make_deb_builds_a_reproducible_package_of_the_staging(tmp_path: Path) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    deb = _build(tmp_path, "a")
    assert deb.name == f"edge-gateway_{version}_arm64.deb"
    again = _build(tmp_path, "b")
    assert deb.read_bytes() == again.read_bytes(), "two builds of one staging differ"

    def field(name: str) -> str:
        return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()

    assert (field("Package"), field("Version"), field("Architecture")) == ("edge-gateway", version, "arm64")
    depends = field("Depends")
    for dep in ("python3 (>= 3.11)", "python3 (<< 3.12)", "python3-venv", "gcc", "libc6-dev", "python3-dev",
                "systemd (>= 247)", "passwd"):
        assert dep in depends.split(", "), depends
    assert "openssh-server" not in depends and "cloud-guest-utils" not in depends
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    rows = [ln.split() for ln in listing.splitlines()]
    names = {r[5] for r in rows}
    assert {f".{DEB_DIST}/appliance/install-appliance.sh", f".{DEB_DIST}/build.conf",
            "./usr/share/doc/edge-gateway/copyright", "./usr/share/doc/edge-gateway/changelog.gz"} <= names
    assert f".{DEB_DIST}/authorized_keys" not in names
    assert {r[1] for r in rows} == {"root/root"} and len({(r[3], r[4]) for r in rows}) == 1
    assert all(n.startswith("./usr/share/") or n in ("./", "./usr/") for n in names), names
    ctl = tmp_path / "ctl"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(ctl)], check=True)
    for script in ("postinst", "prerm", "postrm"):
        assert (ctl / script).read_bytes() == (DEB / script).read_bytes()
        assert (ctl / script).stat().st_mode & 0o777 == 0o755
    conf = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -xOf - '.{DEB_DIST}/build.conf'", shell=True,
                          capture_output=True, text=True, check=True).stdout
    assert re.search(r"^ADMIN_USER=$", conf, re.M), conf


def test_deb_scripts_parse() -> None:
    for s in ("build-deb.sh", "deb-test.sh"):
        p = subprocess.run(["bash", "-n", str(DEB / s)], capture_output=True, text=True)
        assert p.returncode == 0, f"{s}: {p.stderr}"
    for s in ("postinst", "prerm", "postrm"):  # /bin/sh (dash on Debian)
        assert (DEB / s).read_text().startswith("#!/bin/sh\n")
        p = subprocess.run(["sh", "-n", str(DEB / s)], capture_output=True, text=True)
        assert p.returncode == 0, f"{s}: {p.stderr}"
