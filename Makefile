# Two commands on a fresh machine: `make demo` and `make test`.
# Everything (venv, Python deps, the C featurizer, pinned npm tools) is installed here,
# into git-ignored folders of the project (.venv/, node_modules/).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
EDGE   := $(VENV)/bin/edge
SECONDS ?= 60

.PHONY: all setup test-tools demo test typecheck contracts contracts-check capabilities capabilities-check bench bench-ingest bench-rss bench-latency bench-capabilities bench-traces soak train arm-check image image-test deb deb-test clean

all: test

$(VENV)/.stamp-py: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,report]'
	touch $@

node_modules/.stamp-npm: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.stamp-py node_modules/.stamp-npm

# Debian tools some tests need: chromium (the bench report rendered headless) and promtool
# (package prometheus: the alerting rules under monitoring/). Installed with apt when
# missing and root; otherwise those tests skip and say why.
TEST_TOOLS := chromium:chromium promtool:prometheus
test-tools:
	@missing=""; for t in $(TEST_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t##*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "test-tools: not installed:$$missing (needs root and apt); their tests will skip"; fi

demo: setup
	$(EDGE) demo --seconds $(SECONDS)

# The suite waits on real nodes more than it computes: two workers, whole files each
# (module-scoped chains stay in one process), the files with slow tests first.
TEST_WORKERS ?= 2
test: setup test-tools
	$(PY) -m mypy
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

typecheck: setup
	$(PY) -m mypy

contracts: node_modules/.stamp-npm
	node contracts/build.mjs

contracts-check: node_modules/.stamp-npm
	node contracts/build.mjs --check

# The capability ground-truth suite (several solc versions, optimizer off/on).
capabilities: node_modules/.stamp-npm
	node contracts/capabilities/build.mjs

capabilities-check: node_modules/.stamp-npm
	node contracts/capabilities/build.mjs --check

bench-capabilities: setup
	$(PY) benchmarks/capabilities_speed.py --corpus ../shared/data/contracts/unlabeled_train.jsonl.gz --rows 2000

bench: setup
	$(EDGE) bench --corpus ../shared/data/contracts/unlabeled_train.jsonl.gz --workers 1

# This project's ingest vs ethereum-etl 2.4.2's stream adapter on one anvil chain (the peer
# in its own throwaway venv under build/, bytecode analysis off); ends with one JSON line.
bench-ingest: setup
	$(PY) benchmarks/ingest_vs_etl.py --runs 3

# Peak RSS of `edge run` per stage (issue 14): imports, model loaded, catch-up of a 64-block
# backlog (~320 KiB of real code per block), live with forwarding on; one JSON line.
bench-rss: setup
	$(PY) benchmarks/rss_stages.py --quiet

# Where block first seen -> its contracts scored goes (fetch, code, write, score) at 100
# deployments/s per ingest.verify level, the hot path alone (issue 14); JSON lines.
bench-latency: setup
	$(PY) benchmarks/latency_split.py

# Factory-made contracts without a block tracer: ChainReader over one anvil chain with
# trace_block, debug_traceBlockByNumber, batched debug_traceTransaction, receipts only.
bench-traces: setup
	$(PY) benchmarks/traces_without_block_tracer.py --runs 3 --contracts 200 --writes 400

# Soak test of forwarding (issue 13; not part of `make test`): dev chains, `edge run`, 100
# contracts/s and 100 logs/s on 1 s blocks for 10 minutes, one checkpoint of >= 10,000
# records, every checkpoint anchored and verified; ends with one JSON line, exits 1 naming
# each failed check. It measures forwarding, so ingest checks receipts, not account proofs
# (strict ingest is about 30 contracts/s on anvil here: issue 14), and the auditor checks
# mainnet -> testnets as designed, without re-reading the local chain (that re-read makes
# the local anvil grow past 20 GB serving old states; drop --no-audit-local on a big
# machine). Needs about 16 GB of RAM. SOAK_ARGS="--minutes 1 ..." for a short one.
SOAK_ARGS ?= --ingest-verify receipts --no-audit-local
soak: setup
	$(PY) benchmarks/soak.py $(SOAK_ARGS)

train: setup
	$(PY) -m pip install --quiet -e '.[train]'
	OMP_NUM_THREADS=1 $(PY) models/train.py --data ../shared/data/contracts/train.jsonl.gz

arm-check: $(VENV)/.stamp-py
	bash image/arm-check.sh

# The appliance image from Debian bookworm arm64 packages (root; installs its host tools
# with apt): build/edge-gateway-<version>-arm64.img.xz. The arm64 base root file system is
# cached under image/cache/ and shared with arm-check.
image: $(VENV)/.stamp-py
	bash image/build-image.sh

# Boot that image under qemu-system-aarch64 (systemd as PID 1, no network) and check it.
image-test: node_modules/.stamp-npm
	bash image/test/image-test.sh

# The agent as a package for Raspberry Pi OS / Debian bookworm arm64, built by the image's
# install script (its postinst runs install-appliance.sh --steps ...): no root, no qemu.
# build/edge-gateway_<version>_arm64.deb
deb: $(VENV)/.stamp-py
	bash image/deb/build-deb.sh

# That .deb checked (dpkg-deb, lintian) and installed, upgraded, removed and purged in the
# arm64 base root file system under qemu-user (root; the base is make image's cache).
deb-test: deb
	bash image/deb/deb-test.sh

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .mypy_cache
