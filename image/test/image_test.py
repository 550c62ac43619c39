"""`make image-test`: boot the built appliance image under qemu-system-aarch64 and check it.

The shipped artifact (build/edge-gateway-<version>-arm64.img.xz) is unpacked to a test
copy under build/image-test/, which alone receives what the test needs: the emulation
drop-ins (longer TimeoutStartSec/WatchdogSec, image/test/90-emulation*.conf), a mount unit
for a second, read-only test disk and two units that start anvil and the checks from it
(written into the ext4 root with debugfs; no loop device, no mount). The test disk
(ext4, mke2fs -d) holds the linux-arm64 anvil from npm (@foundry-rs/anvil-linux-arm64,
integrity checked against package-lock.json), image/test/guest-check.sh, an SSH key pair
made for this run and the expected install steps.

Three boots of `-M virt -cpu cortex-a72 -smp 2 -m 1024 -nic none`, kernel and initrd
copied out of the image's FAT partition with mtools, systemd as PID 1, the verdict on a
virtio-serial port (one JSON object a line) and the journal on another:

1. first boot, after a technician's edits made from the host with mtools (edge.toml
   pointed at the guest's anvil, authorized_keys dropped on the FAT partition): keystore
   0600 edge, edge-address.txt (read back from the host with mtools), root grown to the
   enlarged disk, READY, blocks in `edge status --json`, RSS, lockdown, listeners,
   watchdog (SIGSTOP -> restart within WatchdogSec);
2. after an edit of edge.toml from the host (metrics port): applied at this boot;
3. after an invalid value written from the host: the unit fails, the key named in the
   journal.

Between the second and the third, a slower boot on the emulated Raspberry Pi 3
(`-M raspi3b`, the image's own bcm2837-rpi-3-b.dtb, root on the emulated SD card, the
test disk on USB, console on the mini UART ttyS1, which carries the verdict lines, since
the board has no virtio-serial): the board is a Pi 3 to the kernel, the agent reaches READY
and ingests. `--no-raspi3b` leaves it out. The test copy is sized to a power of two (the
Pi's SD controller model needs it) at least GROW_MIB larger than the image.

Usage: python3 image/test/image_test.py [--image PATH] [--keep] [--no-raspi3b]
Prints one line per check, the figures, then one JSON summary line; exit 0 when all pass.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ANVIL_PKG = "@foundry-rs/anvil-linux-arm64"
# npm's dist.integrity of the linux-arm64 anvil, by version (package-lock.json records it
# only where npm installed on an arm64 machine; the project pins @foundry-rs/anvil).
ANVIL_ARM64_INTEGRITY = {
    "1.7.1": "sha512-ykHJmFOGdBR8+9smOKBm9ZZDCCCkLQctiHOAddLvmYx9mPeBDMfq6jP51hKYsO5MG8ClPLSlWe+JpiXPjoXgBQ==",
}
METRICS_PORT_EDITED = 9118
BAD_KEY = "ingest.confirmations"
GROW_MIB = 1024
# A hang guard, not a timing check: a boot on a loaded 2-core host took 1500 s (the
# first, with every check), on a quiet one 356 s.
BOOT_TIMEOUT_S = 2700
RASPI3B_DTB = "bcm2837-rpi-3-b.dtb"
VERDICT_PREFIX = "EDGE-VERDICT "  # guest-check.sh's prefix on a serial console


class ImageTestError(Exception):
    """A failure of the test harness itself (a tool missing, the image not found)."""


@dataclass
class Boot:
    """What one boot reported: checks (name -> (ok, detail)), figures, the raw lines."""

    mode: str
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    address: str = ""
    done: bool = False
    wall_s: float = 0.0


def say(msg: str) -> None:
    """One progress line on stderr."""
    print(f"[image-test] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a host command; raise ImageTestError naming it when it fails."""
    p = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if p.returncode != 0:
        raise ImageTestError(f"{' '.join(cmd[:3])}... failed ({p.returncode}): {p.stderr.strip()[-800:]}")
    return p


def version() -> str:
    """The agent's version from pyproject.toml."""
    doc = tomllib.loads((REPO / "pyproject.toml").read_text())
    return str(doc["project"]["version"])


def partitions(disk: Path) -> list[dict[str, Any]]:
    """The MBR partitions of ``disk`` (sfdisk --json): dicts with start and size (sectors)."""
    doc = json.loads(run(["sfdisk", "--json", str(disk)]).stdout)
    parts: list[dict[str, Any]] = doc["partitiontable"]["partitions"]
    return parts


def fat(disk: Path) -> str:
    """The mtools image spec of the FAT partition (``file@@offset``)."""
    return f"{disk}@@{partitions(disk)[0]['start'] * 512}"


def mtype(disk: Path, name: str) -> str:
    """A file of the FAT partition, read with mtools."""
    return run(["mtype", "-i", fat(disk), f"::{name}"], env=_menv()).stdout


def mwrite(disk: Path, name: str, text: str, work: Path) -> None:
    """Write a file to the FAT partition with mtools (as a technician's laptop would)."""
    tmp = work / f"fat-{name}"
    tmp.write_text(text)
    run(["mcopy", "-o", "-i", fat(disk), str(tmp), f"::{name}"], env=_menv())


def _menv() -> dict[str, str]:
    return {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def anvil_binary(work: Path) -> Path:
    """The linux-arm64 anvil of package-lock.json's version, from npm, integrity checked."""
    lock = json.loads((REPO / "package-lock.json").read_text())["packages"]
    version = lock["node_modules/@foundry-rs/anvil"]["version"]
    entry = lock.get(f"node_modules/{ANVIL_PKG}") or {"version": version,
                                                      "integrity": ANVIL_ARM64_INTEGRITY.get(version)}
    want = entry["integrity"]
    if not want:
        raise ImageTestError(f"no integrity known for {ANVIL_PKG}@{version}: add it to ANVIL_ARM64_INTEGRITY")
    tgz_dir = work / "npm"
    tgz_dir.mkdir(exist_ok=True)
    tgzs = list(tgz_dir.glob("*.tgz"))
    if not tgzs:
        run(["npm", "pack", "--silent", f"{ANVIL_PKG}@{entry['version']}"], cwd=tgz_dir)
        tgzs = list(tgz_dir.glob("*.tgz"))
    tgz = tgzs[0]
    algo, b64 = want.split("-", 1)
    got = base64.b64encode(hashlib.new(algo, tgz.read_bytes()).digest()).decode()
    if got != b64:
        tgz.unlink()
        raise ImageTestError(f"{tgz.name}: integrity {algo}-{got} != package-lock's {want}")
    out = work / "anvil"
    with tarfile.open(tgz) as tf:
        member = tf.extractfile("package/bin/anvil")
        if member is None:
            raise ImageTestError(f"{tgz.name} has no package/bin/anvil")
        out.write_bytes(member.read())
    out.chmod(0o755)
    return out


def make_test_disk(work: Path, anvil: Path) -> Path:
    """The read-only ext4 test disk (label EDGETEST) with anvil, the checks and a key pair."""
    src = work / "testdisk"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir()
    shutil.copy2(anvil, src / "anvil")
    shutil.copy2(HERE / "guest-check.sh", src / "guest-check.sh")
    key = work / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "image-test", "-f", str(key)])
    shutil.copy2(key, src / "id_ed25519")
    steps = run(["bash", str(REPO / "image" / "appliance" / "install-appliance.sh"), "--list"]).stdout
    (src / "expected-steps.txt").write_text(steps)
    (src / "metrics-port.txt").write_text(f"{METRICS_PORT_EDITED}\n")
    (src / "bad-key.txt").write_text(f"{BAD_KEY}\n")
    img = work / "testdisk.img"
    img.unlink(missing_ok=True)
    run(["mke2fs", "-q", "-t", "ext4", "-L", "EDGETEST", "-d", str(src), str(img), "160M"])
    return img


def inject_test_units(disk: Path, work: Path) -> None:
    """Write the test-only units and drop-ins into the copy's ext4 root (debugfs -w)."""
    root = partitions(disk)[1]
    spec = f"{disk}?offset={root['start'] * 512}"
    sysd = "/etc/systemd/system"
    cmds = [
        f"mkdir {sysd}/edge.service.d",
        f"write {HERE / '90-emulation.conf'} {sysd}/edge.service.d/90-emulation.conf",
        f"mkdir {sysd}/edge-firstboot.service.d",
        f"write {HERE / '90-emulation-firstboot.conf'} {sysd}/edge-firstboot.service.d/90-emulation.conf",
        f"write {HERE / 'edge-test-anvil.service'} {sysd}/edge-test-anvil.service",
        f"write {HERE / 'edge-image-check.service'} {sysd}/edge-image-check.service",
        f"symlink {sysd}/multi-user.target.wants/edge-test-anvil.service {sysd}/edge-test-anvil.service",
        f"symlink {sysd}/multi-user.target.wants/edge-image-check.service {sysd}/edge-image-check.service",
        "mkdir /mnt/edgetest",
    ]
    # fstab of the test copy: the shipped lines with a 10-minute device timeout (TCG on a
    # busy host: udev's coldplug can take minutes; systemd's 90 s default is for real
    # hardware), and the test disk.
    fstab = run(["debugfs", "-R", "cat /etc/fstab", spec]).stdout
    if "LABEL=RASPIFIRM" not in fstab:
        raise ImageTestError(f"the image's /etc/fstab has no RASPIFIRM line: {fstab!r}")
    lines = []
    for ln in fstab.splitlines():
        f = ln.split()
        if len(f) >= 4 and not ln.startswith("#"):
            f[3] += ",x-systemd.device-timeout=600s"
            ln = "  ".join(f)
        lines.append(ln)
    lines.append("LABEL=EDGETEST  /mnt/edgetest  ext4  ro,x-systemd.device-timeout=600s  0 0")
    (work / "fstab").write_text("\n".join(lines) + "\n")
    cmds += ["rm /etc/fstab", f"write {work / 'fstab'} /etc/fstab"]
    script = work / "debugfs.cmds"
    script.write_text("\n".join(cmds) + "\n")
    p = run(["debugfs", "-w", "-f", str(script), spec])
    errors = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("debugfs ")]
    if errors:
        raise ImageTestError("debugfs: " + "; ".join(errors))
    # The files must be root's and readable (debugfs takes the host file's owner and mode).
    check = run(["debugfs", "-R", f"stat {sysd}/edge.service.d/90-emulation.conf", spec]).stdout
    if not re.search(r"User:\s+0\s+Group:\s+0", check):
        raise ImageTestError(f"injected files are not root's: {check[:200]}")


def qemu_virt(mode: str, disk: Path, test_disk: Path, kernel: Path, initrd: Path,
              console: Path, verdict: Path, journal: Path) -> list[str]:
    """The qemu command line of a `-M virt` boot: verdict and journal on virtio-serial ports."""
    return [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
        "-nic", "none", "-display", "none", "-no-reboot", "-monitor", "none",
        "-serial", f"file:{console}",
        "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", f"root=LABEL=RASPIROOT rw console=ttyAMA0 panic=-1 edge_test={mode}",
        "-drive", f"if=none,file={disk},format=raw,id=d0,cache=unsafe",
        "-device", "virtio-blk-pci,drive=d0",
        "-drive", f"if=none,file={test_disk},format=raw,id=d1,readonly=on",
        "-device", "virtio-blk-pci,drive=d1",
        "-device", "virtio-rng-pci",
        "-device", "virtio-serial-pci",
        "-chardev", f"file,id=verdict,path={verdict}",
        "-device", "virtserialport,chardev=verdict,name=org.edge.verdict",
        "-chardev", f"file,id=journal,path={journal}",
        "-device", "virtserialport,chardev=journal,name=org.edge.journal",
    ]


def qemu_raspi3b(mode: str, disk: Path, test_disk: Path, kernel: Path, initrd: Path, dtb: Path,
                 console: Path) -> list[str]:
    """The qemu command line of a `-M raspi3b` boot (1 GiB, 4 cores, as the board).

    The SD card is the test copy; the test disk is a USB mass-storage device (the board's
    dwc2 host controller). QEMU's first serial port is the PL011 (Bluetooth on a Pi 3), the
    second the mini UART, the console (ttyS1) that carries the verdict lines.
    `systemd.watchdog_sec=off`: QEMU's BCM2835 power-management model has no watchdog
    timer; the write that starts the watchdog (RSTC full reset) resets the board at once,
    so systemd's RuntimeWatchdogSec=14s (kept in the image) would reboot it when the
    bcm2835_wdt module loads. The virt boots check the setting itself.
    """
    return [
        "qemu-system-aarch64", "-M", "raspi3b", "-nic", "none", "-display", "none",
        "-no-reboot", "-monitor", "none", "-serial", "null", "-serial", f"file:{console}",
        "-kernel", str(kernel), "-initrd", str(initrd), "-dtb", str(dtb),
        "-append", f"root=LABEL=RASPIROOT rw console=ttyS1,115200 loglevel=3 panic=-1 "
        f"systemd.watchdog_sec=off edge_test={mode}",
        "-drive", f"if=sd,file={disk},format=raw,cache=unsafe",
        "-drive", f"if=none,file={test_disk},format=raw,id=t,readonly=on",
        "-usb", "-device", "usb-storage,drive=t",
    ]


def boot(mode: str, disk: Path, test_disk: Path, kernel: Path, initrd: Path, work: Path,
         dtb: Path | None = None) -> Boot:
    """Boot the test copy once (edge_test=mode) and read its verdict lines.

    ``dtb`` None: `-M virt`, verdict on a virtio-serial port; else `-M raspi3b` with that
    device tree, verdict lines (prefixed VERDICT_PREFIX) on the serial console.
    Raises ImageTestError when qemu fails or the guest does not power off in BOOT_TIMEOUT_S.
    """
    verdict = work / f"verdict-{mode}.jsonl"
    journal = work / f"journal-{mode}.txt"
    console = work / f"console-{mode}.log"
    for f in (verdict, journal, console):
        f.unlink(missing_ok=True)
    if dtb is None:
        cmd = qemu_virt(mode, disk, test_disk, kernel, initrd, console, verdict, journal)
    else:
        cmd = qemu_raspi3b(mode, disk, test_disk, kernel, initrd, dtb, console)
    say(f"boot {mode}: {' '.join(cmd[:3] if dtb else cmd[:9])} -nic none")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        try:
            _, err = proc.communicate(timeout=BOOT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ImageTestError(f"boot {mode}: no poweroff within {BOOT_TIMEOUT_S} s (console: {console})")
        if proc.returncode != 0:
            raise ImageTestError(f"boot {mode}: qemu exited {proc.returncode}: {err.strip()[-500:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    b = Boot(mode, wall_s=round(time.monotonic() - t0, 1))
    if dtb is None:
        lines = verdict.read_text(errors="replace").splitlines() if verdict.exists() else []
    else:  # the console: only the prefixed lines are verdict lines
        text = console.read_text(errors="replace") if console.exists() else ""
        lines = [ln.split(VERDICT_PREFIX, 1)[1] for ln in text.splitlines() if VERDICT_PREFIX in ln]
        verdict.write_text("\n".join(lines) + "\n")
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line, strict=False)
        except json.JSONDecodeError:
            b.checks[f"verdict_line_{len(b.checks)}"] = (False, f"not JSON: {line[:120]}")
            continue
        if "check" in doc:
            b.checks[str(doc["check"])] = (bool(doc["ok"]), str(doc.get("detail", "")))
        elif "figure" in doc:
            b.figures[str(doc["figure"])] = float(doc["value"])
        elif "address" in doc:
            b.address = str(doc["address"])
        elif doc.get("done"):
            b.done = True
    if not b.done:
        b.checks["guest_checks_finished"] = (False, f"no final verdict line; see {console.relative_to(REPO)}")
    return b


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module doc); returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--image", type=Path, default=None,
                    help="the .img.xz, or an unpacked .img (default: build/'s .img.xz)")
    ap.add_argument("--keep", action="store_true", help="keep build/image-test/disk.img")
    ap.add_argument("--no-raspi3b", dest="raspi3b", action="store_false",
                    help="leave out the (slower) boot on the emulated Raspberry Pi 3")
    args = ap.parse_args(argv)
    for tool in ("qemu-system-aarch64", "mcopy", "sfdisk", "debugfs", "mke2fs", "xz", "ssh-keygen", "npm"):
        if shutil.which(tool) is None:
            raise ImageTestError(f"{tool} is missing (make image-test installs the host tools)")
    name = f"edge-gateway-{version()}-arm64"
    image = args.image or REPO / "build" / f"{name}.img.xz"
    if not image.exists():
        raise ImageTestError(f"{image} not found: run make image first")
    work = REPO / "build" / "image-test"
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.monotonic()

    disk = work / "disk.img"
    say(f"unpacking {image.name} to a test copy (+{GROW_MIB} MiB or more for the root to grow into)")
    if image.suffix == ".img":  # an unpacked image (--image build/...img)
        run(["cp", "--sparse=always", str(image), str(disk)])
    else:
        with disk.open("wb") as out:
            subprocess.run(["xz", "-dc", "-T2", str(image)], stdout=out, check=True)
    raw_mib = disk.stat().st_size / 2**20
    before = partitions(disk)
    with disk.open("r+b") as f:
        # A power of two: QEMU's SD card model takes no other size (-M raspi3b).
        f.truncate(1 << (disk.stat().st_size + GROW_MIB * 2**20 - 1).bit_length())

    names = run(["mdir", "-b", "-i", fat(disk), "::"], env=_menv()).stdout.split()
    kname = sorted(n.lstrip(":/") for n in names if re.search(r"vmlinuz-", n))
    iname = sorted(n.lstrip(":/") for n in names if re.search(r"initrd\.img-", n))
    if not kname or not iname:
        raise ImageTestError(f"no vmlinuz-*/initrd.img-* on the FAT partition: {names}")
    kernel, initrd = work / "vmlinuz", work / "initrd.img"
    run(["mcopy", "-o", "-i", fat(disk), f"::{kname[-1]}", str(kernel)], env=_menv())
    run(["mcopy", "-o", "-i", fat(disk), f"::{iname[-1]}", str(initrd)], env=_menv())

    # The technician, from a laptop: edge.toml pointed at the node, an SSH key dropped in.
    toml = mtype(disk, "edge.toml")
    if 'ws_url = "' not in toml or "\nport = 9108\n" not in toml:
        raise ImageTestError("the image's edge.toml lacks the ws_url / metrics port lines")
    toml = re.sub(r'^ws_url = "[^"]*"', 'ws_url = "ws://127.0.0.1:8545"', toml, count=1, flags=re.M)
    mwrite(disk, "edge.toml", toml, work)
    inject_test_units(disk, work)
    test_disk = make_test_disk(work, anvil_binary(work))
    mwrite(disk, "authorized_keys", (work / "id_ed25519.pub").read_text(), work)

    boots: list[Boot] = []
    host: dict[str, tuple[bool, str]] = {}
    b1 = boot("first", disk, test_disk, kernel, initrd, work)
    boots.append(b1)
    addr = mtype(disk, "edge-address.txt").strip()
    host["host_reads_address_with_mtools"] = (
        bool(re.fullmatch(r"0x[0-9a-fA-F]{40}", addr)) and addr == b1.address, addr)
    after = partitions(disk)
    disk_sectors = disk.stat().st_size // 512
    grew = after[1]["size"] > before[1]["size"] and after[1]["start"] + after[1]["size"] >= disk_sectors - 2048
    host["root_partition_grew"] = (grew, f"{before[1]['size'] // 2048} MiB -> {after[1]['size'] // 2048} MiB")

    toml = mtype(disk, "edge.toml")
    mwrite(disk, "edge.toml", toml.replace("\nport = 9108\n", f"\nport = {METRICS_PORT_EDITED}\n"), work)
    boots.append(boot("config", disk, test_disk, kernel, initrd, work))

    if args.raspi3b:
        if RASPI3B_DTB not in {n.lstrip(":/") for n in names}:
            raise ImageTestError(f"{RASPI3B_DTB} is not on the FAT partition: {names}")
        dtb = work / RASPI3B_DTB
        run(["mcopy", "-o", "-i", fat(disk), f"::{RASPI3B_DTB}", str(dtb)], env=_menv())
        boots.append(boot("raspi3b", disk, test_disk, kernel, initrd, work, dtb=dtb))

    toml = mtype(disk, "edge.toml")
    if "\nconfirmations = 5 " not in toml:
        raise ImageTestError("edge.toml lacks the [ingest] confirmations line")
    mwrite(disk, "edge.toml", toml.replace("\nconfirmations = 5 ", "\nconfirmations = -5 ", 1), work)
    boots.append(boot("badkey", disk, test_disk, kernel, initrd, work))

    ok = True
    for b in boots:
        for k, (good, detail) in b.checks.items():
            ok &= good
            print(f"{'PASS' if good else 'FAIL'}  {b.mode:6s} {k}: {detail[:160]}")
    for k, (good, detail) in host.items():
        ok &= good
        print(f"{'PASS' if good else 'FAIL'}  host   {k}: {detail[:160]}")
    figures: dict[str, Any] = {
        "image_xz_mib": round(image.stat().st_size / 2**20, 1),
        "image_raw_mib": round(raw_mib, 1),
        "boot_wall_s": {b.mode: b.wall_s for b in boots},
        "total_s": round(time.monotonic() - t_all, 1),
    }
    for b in boots:
        for k, v in b.figures.items():
            figures[f"{b.mode}.{k}"] = v
    for k, v in figures.items():
        print(f"figure {k}: {v}")
    print(json.dumps({"ok": ok, "figures": figures,
                      "failed": [f"{b.mode}.{k}" for b in boots for k, (g, _) in b.checks.items() if not g]
                      + [k for k, (g, _) in host.items() if not g]}, sort_keys=True))
    if not args.keep:
        disk.unlink(missing_ok=True)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ImageTestError as exc:
        print(f"[image-test] ERROR: {exc}", file=sys.stderr)
        sys.exit(1)
