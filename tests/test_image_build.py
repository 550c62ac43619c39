"""The two image builders (make image and the pi-gen stage) run one install script, whole.

`make image-test` boots the Debian image and checks the steps it ran
(/usr/share/edge/install-steps.txt); these tests keep the pi-gen stage, which cannot be
built here, on the same script, arguments and staging.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "image"
SCRIPT = IMAGE / "appliance" / "install-appliance.sh"
# Where each builder runs the script inside the image.
BUILDERS = {
    "make image": IMAGE / "build-image.sh",
    "pi-gen": IMAGE / "pi-gen" / "stage-edge" / "00-install" / "01-run-chroot.sh",
}
# Where each builder stages what the script installs.
STAGERS = {
    "make image": IMAGE / "build-image.sh",
    "pi-gen": IMAGE / "pi-gen" / "prepare.sh",
}


def _steps(*args: str) -> list[str]:
    out = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, check=True).stdout
    return out.split()


def _invocations(path: Path) -> list[list[str]]:
    """The argument lists the file passes to install-appliance.sh (after its path)."""
    calls = []
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = re.search(r"\bbash\s+\S*install-appliance\.sh((?:\s+(?![0-9]*>)[^\s|&;>]+)*)", line)
        if m:
            calls.append(m.group(1).split())
    return calls


def test_both_builders_call_the_install_script_once_with_the_same_arguments() -> None:
    calls = {name: _invocations(path) for name, path in BUILDERS.items()}
    for name, c in calls.items():
        assert len(c) == 1, f"{name}: install-appliance.sh called {len(c)} times: {c}"
    assert calls["make image"] == calls["pi-gen"] == [["/opt/edge/dist"]], calls


def test_both_builders_stage_with_stage_dist() -> None:
    for name, path in STAGERS.items():
        text = path.read_text()
        assert re.search(r'bash "\$(HERE|REPO/image)/stage-dist\.sh" "\$DIST"', text), \
            f"{name} ({path.relative_to(REPO)}) does not stage with image/stage-dist.sh"
    copy = (IMAGE / "pi-gen" / "stage-edge" / "00-install" / "00-run.sh").read_text()
    assert 'cp -a "${DIST}" "${ROOTFS_DIR}/opt/edge/dist"' in copy


def test_the_steps_listed_are_the_steps_run(tmp_path: Path) -> None:
    listed = _steps("--list")
    assert listed[:2] == ["users", "venv"] and "lockdown" in listed and "watchdog" in listed
    (tmp_path / "build.conf").write_text("EDGE_HOSTNAME=edge-gateway\nADMIN_USER=admin\n")
    assert _steps("--dry-run", str(tmp_path)) == listed
    # Every step function is listed, and every listed step has its function.
    text = SCRIPT.read_text()
    defined = re.findall(r"^step_([a-z_]+)\(\) \{", text, re.M)
    assert sorted(defined) == sorted(listed)


def test_the_install_script_refuses_a_dist_without_build_conf(tmp_path: Path) -> None:
    p = subprocess.run(["bash", str(SCRIPT), "--dry-run", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode != 0
    assert "build.conf is missing" in p.stderr


def test_shell_scripts_parse() -> None:
    scripts = [SCRIPT, IMAGE / "build-image.sh", IMAGE / "base-rootfs.sh", IMAGE / "debian-mirror.sh", IMAGE / "stage-dist.sh",
               IMAGE / "arm-check.sh", IMAGE / "pi-gen" / "prepare.sh", IMAGE / "test" / "guest-check.sh",
               IMAGE / "test" / "image-test.sh", *sorted((IMAGE / "appliance").glob("edge-*[!e]"))]
    for s in scripts:
        if s.suffix in (".service", ".mount"):
            continue
        p = subprocess.run(["bash", "-n", str(s)], capture_output=True, text=True)
        assert p.returncode == 0, f"{s.relative_to(REPO)}: {p.stderr}"


def test_emulation_drop_in_is_not_shipped() -> None:
    shipped = (IMAGE / "edge.service").read_text()
    assert re.search(r"^WatchdogSec=30$", shipped, re.M) and re.search(r"^TimeoutStartSec=90$", shipped, re.M)
    for path in (SCRIPT, IMAGE / "build-image.sh", IMAGE / "stage-dist.sh"):
        assert "90-emulation" not in path.read_text(), path
