# medmesh: the README's two commands are `make demo` and `make test`.
# Both are idempotent: they set up .venv (pinned Python deps) and node_modules
# (Solidity compiler + anvil, from package-lock.json) only when those are missing or stale.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
MEDMESH := $(VENV)/bin/medmesh
PYTEST_ARGS ?=
# pytest-xdist: two workers, a module's tests on one worker (its module-scoped campaign starts
# once), the modules handed out in collection order (tests/e2e and tests/integration, the long
# ones, first; xdist's default reorder puts the modules with the most tests first and leaves the
# e2e modules for a one-worker tail). Most long tests wait on deadlines with the CPU idle, so two
# workers share two cores well. `make test PYTEST_WORKERS=` runs the suite in one process.
PYTEST_WORKERS ?= -n 2 --dist loadscope --no-loadscope-reorder

.PHONY: setup browser demo test lint bench devnet audit slither clean

setup: $(VENV)/.installed node_modules/.installed

# Debian's chromium + chromedriver for the status page's browser test (tests/e2e/test_monitoring_node.py);
# skipped when both are already on PATH. About 90 s on a fresh Debian 12 (docs/monitoring.md).
# Only `make test` needs it; `make demo` never installs system packages.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver; }

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

# the lint extra (ruff, mypy) beside the test extra, installed once per pyproject.toml change
$(VENV)/.lint-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[test,lint]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(MEDMESH) demo --chain-state build/demo-chain.json --json build/demo.json --model-out build/demo-model.npy

test: setup browser
	$(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# ruff (lint, then the formatter as a check) and mypy on gossip/, ledger/ and node/ ([tool.mypy] in pyproject.toml)
lint: $(VENV)/.lint-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# `make bench` reproduces the evaluation suite (README, 'Evaluation suite'); `make bench QUICK=1` is the short version.
# docs/results.md is generated from the records afterwards (scripts/results_md.py).
bench: setup
	$(PY) scripts/bench.py $(if $(QUICK),--quick)
	$(PY) scripts/results_md.py

devnet: setup
	$(MEDMESH) devnet

audit: setup
	$(MEDMESH) audit --chain-state build/demo-chain.json

slither: setup
	bash scripts/slither.sh

clean:
	rm -rf build .pytest_cache
