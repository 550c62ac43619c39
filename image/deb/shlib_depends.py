"""The Debian packages the shared objects in a folder of wheels need from the system.

Usage: python3 image/deb/shlib_depends.py WHEELS_DIR
Prints one line, the Depends fragment, e.g. ``libc6 (>= 2.28), libgcc-s1, libstdc++6``.

What ``dpkg-shlibdeps`` would do for ELF files installed on the build machine, done for
aarch64 wheels on an x86 host (where the arm64 libraries and their shlibs files are not
installed): every ``.so`` in every wheel is read with ``readelf`` (binutils reads any ELF
class and machine); its ``NEEDED`` entries not satisfied by a file shipped in one of the
wheels (manylinux wheels bundle their own libraries, ``auditwheel repair``) are mapped to
their Debian package with SONAME_PACKAGES, and the highest ``GLIBC_x.y`` symbol version
they reference gives the libc6 version. An unmapped soname is an error, so a new wheel
that links a new system library fails the build instead of shipping an unmet dependency
(PEP 600 lists the libraries a manylinux wheel may take from the system).

Errors: exits 1 (message on stderr) for an unmapped soname or an unreadable wheel.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# The sonames of the PEP 600 / PEP 599 system library policy met in practice, with the
# bookworm (and Raspberry Pi OS bookworm) package that ships each one on arm64.
SONAME_PACKAGES: dict[str, str] = {
    "libc.so.6": "libc6",
    "libm.so.6": "libc6",
    "libdl.so.2": "libc6",
    "librt.so.1": "libc6",
    "libpthread.so.0": "libc6",
    "libutil.so.1": "libc6",
    "libresolv.so.2": "libc6",
    "libnsl.so.1": "libc6",
    "ld-linux-aarch64.so.1": "libc6",
    "libgcc_s.so.1": "libgcc-s1",
    "libstdc++.so.6": "libstdc++6",
    "libz.so.1": "zlib1g",
}

_NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")
_GLIBC = re.compile(r"Name: GLIBC_(\d+)\.(\d+)")


class UnmappedSoname(Exception):
    """A shared object needs a system library this script has no package for."""


def _readelf(args: list[str], path: Path) -> str:
    out = subprocess.run(["readelf", "-W", *args, str(path)], capture_output=True, text=True, check=True)
    return out.stdout


def depends(wheels: Path) -> list[str]:
    """Depends entries (sorted, e.g. ``["libc6 (>= 2.28)", "libstdc++6"]``) for the wheels.

    Raises UnmappedSoname naming the soname and the files that need it.
    """
    shipped: set[str] = set()
    needed: dict[str, set[str]] = {}
    glibc = (0, 0)
    with tempfile.TemporaryDirectory() as tmp:
        for whl in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(whl) as zf:
                for info in zf.infolist():
                    name = Path(info.filename).name
                    shipped.add(name)
                    if info.is_dir() or not re.search(r"\.so(\.|$)", name):
                        continue
                    target = Path(tmp) / whl.name / info.filename
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(info))
                    if target.read_bytes()[:4] != b"\x7fELF":
                        continue
                    for so in _NEEDED.findall(_readelf(["-d"], target)):
                        needed.setdefault(so, set()).add(f"{whl.name}:{info.filename}")
                    for major, minor in _GLIBC.findall(_readelf(["-V"], target)):
                        glibc = max(glibc, (int(major), int(minor)))
    packages: dict[str, str] = {}
    for so, users in sorted(needed.items()):
        if so in shipped:
            continue
        pkg = SONAME_PACKAGES.get(so)
        if pkg is None:
            raise UnmappedSoname(f"{so} (needed by {', '.join(sorted(users)[:3])}): add its Debian package "
                                 "to SONAME_PACKAGES in image/deb/shlib_depends.py")
        packages[pkg] = pkg
    if "libc6" in packages and glibc > (0, 0):
        packages["libc6"] = f"libc6 (>= {glibc[0]}.{glibc[1]})"
    return [packages[k] for k in sorted(packages)]


def main(argv: list[str]) -> int:
    """Print the Depends fragment for the wheels folder argv[1]; 1 on an error."""
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print("usage: shlib_depends.py WHEELS_DIR", file=sys.stderr)
        return 2
    try:
        print(", ".join(depends(Path(argv[1]))))
    except (UnmappedSoname, zipfile.BadZipFile, subprocess.CalledProcessError) as exc:
        print(f"shlib_depends: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
