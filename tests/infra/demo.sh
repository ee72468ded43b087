#!/usr/bin/env bash
# `make demo` after `make dev-up`: apply the examples and show what the operator made of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=/dev/null
source .dev/env
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The local cluster: one node, the operator running as a pod"
kubectl get nodes -o wide
kubectl get pods -n kubeloop-system -o wide

step "Applying manifests/examples/ to the namespace demo"
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n demo -f manifests/examples/

step "The operator reconciles them (kubectl get kubeloop -n demo)"
kubectl wait -n demo --for=jsonpath='{.status.observedGeneration}'=1 --timeout=60s \
  trainingrun/churn-2024-06-01 modelversion/churn-v7 modeldeployment/churn modelmonitor/churn \
  batchprediction/churn-nightly >/dev/null
kubectl get kubeloop -n demo

step "Invalid input is refused by the API server, with the reason"
kubectl apply -n demo -f - <<'YAML' || true
apiVersion: kubeloop.io/v1alpha1
kind: ModelDeployment
metadata: {name: both}
spec:
  model: churn
  version: 1
  track: {policy: Latest}
YAML

step "Events"
kubectl get events -n demo --sort-by=.lastTimestamp

cat <<'TXT'

The stack stays up. Use it:  source .dev/env && kubectl get kubeloop -A
Operator logs:               kubectl logs -n kubeloop-system deploy/kubeloop-operator
Stop everything:             make dev-down
TXT
