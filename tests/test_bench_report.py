"""``edge bench --report DIR``: the page, its plots and raw JSON; rendered in headless Chromium.

The runs are tiny (300 contracts); nothing here asserts a speed. The browser check runs
Debian's ``chromium`` headless inside a fresh network namespace when possible (``unshare
--net``: nothing can leave the machine), with a fresh profile folder.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "contracts"
WATTS = 4.5

pytest.importorskip("matplotlib", reason="the [report] extra (matplotlib) is not installed")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of 1 and 2 workers over the first 300 corpus rows, with a meter figure of 4.5 W."""
    src = DATA / "unlabeled_train.jsonl.gz"
    if not src.exists():
        pytest.skip(f"shared data folder {DATA} is absent")
    tmp = tmp_path_factory.mktemp("report")
    corpus = tmp / "slice.jsonl.gz"
    with gzip.open(src, "rt") as fi, gzip.open(corpus, "wt") as fo:
        for i, line in enumerate(fi):
            if i == 300:
                break
            fo.write(line)
    out = tmp / "out"
    r = subprocess.run([sys.executable, "-m", "edge", "bench", "--corpus", str(corpus), "--workers", "2",
                        "--batch", "64", "--no-progress", "--watts", str(WATTS), "--report", str(out), "--json"],
                       capture_output=True, text=True, timeout=240, cwd=REPO,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["report"] == str(out / "index.html")
    return out


def test_report_json_holds_every_run(report: Path) -> None:
    data = json.loads((report / "bench.json").read_text())
    runs = data["runs"]
    assert [r["workers"] for r in runs] == [1, 2]
    for r in runs:
        res = r["result"]
        assert res["workers"] == r["workers"] and res["contracts"] == 300
        assert len(r["latency_us"]) == len(r["batch_sizes"]) > 0 and sum(r["batch_sizes"]) == 300
        assert all(x > 0 for x in r["latency_us"])
        assert len(r["rss"]) >= 2 and all(mb > 10 for _, mb in r["rss"])  # /proc is there on Linux
        assert [t for t, _ in r["rss"]] == sorted(t for t, _ in r["rss"])
        assert res["watts"] == WATTS and res["contracts_per_s_per_w"] == pytest.approx(
            res["contracts_per_s"] / WATTS, rel=1e-3)


def test_report_page_has_four_plots_with_power(report: Path) -> None:
    page = (report / "index.html").read_text()
    figures = re.findall(r'<figure id="(\w+)"><svg', page)
    assert figures == ["throughput", "latency", "rss", "efficiency"]
    assert "power-unknown" not in page
    # self-contained: no script, no stylesheet link, every reference inside the page (or the JSON beside it)
    assert "<script" not in page and "<link" not in page and "<metadata>" not in page
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(ref.startswith("#") or ref == "bench.json" for ref in refs), set(refs)


def test_report_without_power_says_unknown(report: Path) -> None:
    from edge.appliance.bench_report import render_html

    data = json.loads((report / "bench.json").read_text())
    for r in data["runs"]:
        r["result"]["watts"] = None
        r["result"]["contracts_per_s_per_w"] = None
        r["result"]["watts_source"] = "unknown"
    page = render_html(data)
    assert re.findall(r'<figure id="(\w+)"><svg', page) == ["throughput", "latency", "rss"]
    assert 'id="power-unknown"' in page


def test_missing_matplotlib_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, report: Path) -> None:
    from edge.appliance.bench_report import render_html
    from edge.errors import EdgeError

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if absent
    data = json.loads((report / "bench.json").read_text())
    with pytest.raises(EdgeError, match=r"pip install 'edge-gateway\[report\]'"):
        render_html(data)


_PROBE = """<script>
const sizes = [...document.querySelectorAll('figure svg, figure img')].map(e => {
  const b = e.getBoundingClientRect(); return [Math.round(b.width), Math.round(b.height)]; });
const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(sizes);
document.body.appendChild(pre);
</script>"""


def _own_netns() -> bool:
    """True when this process may put a child into a new network namespace (root + unshare)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, timeout=10).returncode == 0


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe is not None
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    if _own_netns():
        cmd = ["unshare", "--net", "--", *cmd]  # a network namespace of its own: loopback only, and down
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="headless browser check needs Debian's chromium (make test-tools installs it)")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    probe = report / "probe.html"
    probe.write_text((report / "index.html").read_text().replace("</body>", _PROBE + "</body>"))
    dom = _chromium("--dump-dom", probe.as_uri(), profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout)
    assert m, dom.stdout[-2000:]
    sizes = json.loads(m.group(1))
    assert len(sizes) == 4 and all(w >= 200 and h >= 100 for w, h in sizes), sizes

    shot = tmp_path / "report.png"
    r = _chromium("--window-size=1100,2400", f"--screenshot={shot}", (report / "index.html").as_uri(),
                  profile=tmp_path / "profile-shot")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = Image.open(shot).convert("L")
    assert img.size == (1100, 2400)
    hist = img.histogram()
    dark = sum(hist[:200]) / (img.size[0] * img.size[1])
    assert dark > 0.01, f"screenshot is nearly blank: {dark:.4f} of pixels are not white"
    # the plots are drawn where they are laid out: the band of the first figure is not blank
    top = Image.open(shot).convert("L").crop((0, 300, 1100, 900))
    colors = top.getcolors(maxcolors=256)
    assert colors is not None and len(colors) > 20, colors
