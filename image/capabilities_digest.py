"""Digest of the capability reports of the ground-truth suite: x86 and arm64 must agree.

Usage: ``python image/capabilities_digest.py [ARTIFACT_DIR]`` (default:
contracts/capabilities/artifacts). Needs only the standard library, numpy (imported by
``edge.scoring.features``) and the ``edge`` package on ``sys.path``; selector names are
left out (eth-hash need not be installed), so it runs in a bare arm64 rootfs too.
Prints ``machine python codes flags sha256`` on one line; ``elapsed_ms`` is excluded.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

from edge.scoring import capabilities as cap
from edge.scoring import selector_names


def main() -> None:
    """Analyse every artifact code and print the digest line."""
    selector_names.signature_of = lambda s: None  # type: ignore[assignment]
    cap.signature_of = lambda s: None  # type: ignore[assignment]
    here = Path(__file__).resolve().parents[1] / "contracts" / "capabilities" / "artifacts"
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else here
    h = hashlib.sha256()
    n = flags = 0
    for p in sorted(folder.glob("*.json")):
        for name, c in sorted(json.loads(p.read_text())["contracts"].items()):
            js = cap.analyze(bytes.fromhex(c["deployedBytecode"][2:]), budget_s=600).to_json(
                functions=True
            )
            js.pop("elapsed_ms")
            n += 1
            flags += len(js["capabilities"])
            h.update(json.dumps([p.name, name, js], sort_keys=True).encode())
    print(platform.machine(), sys.version.split()[0], n, flags, h.hexdigest())


if __name__ == "__main__":
    main()
