"""Digest of capability reports: x86 and arm64 must agree.

Usage: ``python image/capabilities_digest.py [ARTIFACT_DIR]`` (default:
contracts/capabilities/artifacts, the ground-truth suite). Needs only the standard
library, numpy (imported by ``edge.scoring.features``) and the ``edge`` package on
``sys.path``; selector names are left out (eth-hash need not be installed), so it runs in
a bare arm64 rootfs too. Prints ``machine python codes flags sha256`` on one line;
``elapsed_ms`` is excluded.

:func:`report_digest` is what ``image/smoke.py`` calls on the corpus slice inside the
arm64 rootfs and on the host (``make arm-check`` compares the two digests).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from edge.scoring import capabilities as cap
from edge.scoring import selector_names

__all__ = ["report_digest", "main"]

DIGEST_BUDGET_S = 600.0
"""Budget per code: large, so no report is a ``timeout`` that depends on the CPU's speed."""


def report_digest(items: Iterable[tuple[Sequence[str], bytes]],
                  budget_s: float = DIGEST_BUDGET_S) -> tuple[int, int, str]:
    """Analyse each code and hash the reports (sha256 over ``[*key, report JSON]`` with
    the functions, without ``elapsed_ms``; sorted keys).

    Args:
        items: ``(key, runtime code)`` pairs, in the order to hash; ``key`` is a list of
            strings naming the code (file and contract, or row and hash).
        budget_s: analysis budget per code, seconds.

    Returns:
        ``(codes, flags raised in total, sha256 hex)``.
    """
    h = hashlib.sha256()
    n = flags = 0
    for key, code in items:
        js = cap.analyze(code, budget_s=budget_s).to_json(functions=True)
        js.pop("elapsed_ms")
        n += 1
        flags += len(js["capabilities"])
        h.update(json.dumps([*key, js], sort_keys=True).encode())
    return n, flags, h.hexdigest()


def _artifacts(folder: Path) -> Iterable[tuple[Sequence[str], bytes]]:
    for p in sorted(folder.glob("*.json")):
        for name, c in sorted(json.loads(p.read_text())["contracts"].items()):
            yield [p.name, name], bytes.fromhex(c["deployedBytecode"][2:])


def main() -> None:
    """Analyse every artifact code and print the digest line."""
    setattr(selector_names, "signature_of", lambda s: None)
    setattr(cap, "signature_of", lambda s: None)
    here = Path(__file__).resolve().parents[1] / "contracts" / "capabilities" / "artifacts"
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else here
    n, flags, digest = report_digest(_artifacts(folder))
    print(platform.machine(), sys.version.split()[0], n, flags, digest)


if __name__ == "__main__":
    main()
