# Two commands on a fresh machine: `make demo` and `make test`.
# Everything (venv, Python deps, the C featurizer, pinned npm tools) is installed here,
# into git-ignored folders of the project (.venv/, node_modules/).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
EDGE   := $(VENV)/bin/edge
SECONDS ?= 60

.PHONY: all setup demo test typecheck contracts contracts-check bench train arm-check image image-test clean

all: test

$(VENV)/.stamp-py: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

node_modules/.stamp-npm: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.stamp-py node_modules/.stamp-npm

demo: setup
	$(EDGE) demo --seconds $(SECONDS)

test: setup
	$(PY) -m mypy
	$(PY) -m pytest -q

typecheck: setup
	$(PY) -m mypy

contracts: node_modules/.stamp-npm
	node contracts/build.mjs

contracts-check: node_modules/.stamp-npm
	node contracts/build.mjs --check

bench: setup
	$(EDGE) bench --corpus ../shared/data/contracts/unlabeled_train.jsonl.gz --workers 1

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

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .mypy_cache
