# Kubeloop developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: help venv testbin lint typecheck test test-fast crds dev-up dev-down dev-status demo clean \
	images up chart-lint manifests

help:
	@echo "make demo      bring up the local stack and show it (see README)"
	@echo "make test      install, build/reuse test binaries, lint, type-check, run every test tier"
	@echo "make dev-up    control plane + MinIO + a real node (kubelet, containerd) in the background (.dev/env to use it)"
	@echo "make dev-down  stop exactly what dev-up started"
	@echo "make chart-lint  helm lint the chart with every ci/ values file; check manifests/ is up to date"
	@echo "make manifests regenerate the chart's CRD templates and manifests/ from crds/ and the chart"
	@echo "make images    kubeloop/{operator,trainer,server,router,monitor}:<version> as OCI archives (Docker or buildah)"
	@echo "make up        (Docker) a kind cluster with the images, the chart, MinIO and the examples"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# The node's Debian packages (containerd, runc, CNI plugins, iptables, buildah...) when missing; then
# etcd, the Kubernetes control plane and node binaries, kubectl, CoreDNS, pause, MinIO and helm,
# cached by version outside the repo (~/.cache/kubeloop-testbin), built from the Go module proxy and PyPI.
testbin: $(STAMP)
	bash tests/infra/node/packages.sh
	PYTHON=$(abspath $(BIN))/python bash tests/infra/testbin.sh

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench images
	$(BIN)/ruff format --check operator tests bench images

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy images

# Images before pytest: a cold build takes minutes, which no test's timeout should have to cover.
test: lint typecheck testbin images
	$(BIN)/python -m pytest tests

dev-up: testbin images
	$(BIN)/python -m tests.infra.devenv up

dev-down:
	@test -x $(BIN)/python && $(BIN)/python -m tests.infra.devenv down || echo "nothing to stop"

dev-status:
	$(BIN)/python -m tests.infra.devenv status

# The whole loop in the namespace `demo`: train, validate, serve, monitor, drift, retrain, shadow,
# canary, promote (tests/e2e/scenario.py, the same scenario as the end-to-end test).
demo: dev-up
	@bash -c 'source .dev/env && exec $(abspath $(BIN))/python -m tests.e2e.demo'

clean: dev-down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# ---- Packaging: the Helm chart, the kustomize manifests derived from it, the images -------------

VERSION      := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
COMPONENTS   := operator trainer server router monitor
# Empty: the Dockerfiles' own (python:3.11-slim-bookworm).
PYTHON_IMAGE ?=
KIND         ?= kind
KIND_CLUSTER ?= kubeloop
KUBECTL      ?= kubectl
# The test binaries' helm (make testbin) when it is there, else the one on PATH.
HELM = $(shell $(BIN)/python -c 'from tests.infra.testbin import binaries; h = binaries().helm; print(h if h.exists() else "")' 2>/dev/null | grep . || command -v helm)

# Regenerate charts/kubeloop/templates/crds/ (from crds/), manifests/base and manifests/overlays/dev.
manifests: testbin
	$(BIN)/python -m manifests.generate

chart-lint: testbin
	$(HELM) lint --strict charts/kubeloop
	@for values in charts/kubeloop/ci/*-values.yaml; do \
	  echo "helm lint --strict -f $$values"; \
	  $(HELM) lint --strict charts/kubeloop -f $$values >/dev/null || exit 1; \
	done
	$(BIN)/ruff check manifests/generate.py
	$(BIN)/ruff format --check manifests/generate.py
	$(BIN)/python -m manifests.generate --check

# OCI archives in ~/.cache/kubeloop-images (KUBELOOP_IMAGES), cached by content: docker build where a
# Docker engine answers, else buildah on a base built from Debian's packages (images/README.md).
# Pin the base by digest with PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
images: $(STAMP)
	$(BIN)/python -m images.build $(if $(PYTHON_IMAGE),--python-image $(PYTHON_IMAGE))

# Needs Docker, kind, kubectl and helm. A kind cluster with the images loaded, the chart installed
# with its bundled MinIO, the S3 Secret (random keys, kept across runs), and the examples applied.
up: images
	$(KIND) get clusters | grep -qx '$(KIND_CLUSTER)' || $(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml
	@for component in $(COMPONENTS); do \
	  $(KIND) load docker-image --name $(KIND_CLUSTER) kubeloop/$$component:$(VERSION) || exit 1; \
	done
	$(KUBECTL) config use-context kind-$(KIND_CLUSTER)
	$(KUBECTL) create namespace kubeloop-system --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) label namespace kubeloop-system --overwrite pod-security.kubernetes.io/enforce=restricted
	$(KUBECTL) -n kubeloop-system get secret kubeloop-s3 >/dev/null 2>&1 || \
	  $(KUBECTL) -n kubeloop-system create secret generic kubeloop-s3 \
	    --from-literal=accessKey=kubeloop-$$(openssl rand -hex 4) --from-literal=secretKey=$$(openssl rand -hex 20)
	$(HELM) upgrade --install kubeloop charts/kubeloop --namespace kubeloop-system \
	  --set minio.enabled=true --set images.tag=$(VERSION) --wait --timeout 5m
	$(KUBECTL) create namespace demo --dry-run=client -o yaml | $(KUBECTL) apply -f -
	@access=$$($(KUBECTL) -n kubeloop-system get secret kubeloop-s3 -o jsonpath='{.data.accessKey}' | base64 -d); \
	secret=$$($(KUBECTL) -n kubeloop-system get secret kubeloop-s3 -o jsonpath='{.data.secretKey}' | base64 -d); \
	$(KUBECTL) -n demo create secret generic kubeloop-s3 --from-literal=accessKey="$$access" \
	  --from-literal=secretKey="$$secret" --dry-run=client -o yaml | $(KUBECTL) apply -f - >/dev/null
	$(KUBECTL) apply -n demo -f manifests/examples/
	$(KUBECTL) wait -n demo --for=jsonpath='{.status.observedGeneration}'=1 --timeout=180s \
	  trainingrun/churn-2024-06-01 modelversion/churn-v7 modeldeployment/churn modelmonitor/churn \
	  batchprediction/churn-nightly
	$(KUBECTL) get kubeloop -n demo
	@echo "kind cluster $(KIND_CLUSTER) is up: kubectl get kubeloop -A; remove it with: $(KIND) delete cluster --name $(KIND_CLUSTER)"
