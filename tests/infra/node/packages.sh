#!/usr/bin/env bash
# Debian's packages the real node and the image builds need, installed when missing (a fresh machine
# has none of them). Idempotent: a machine that has them all costs one dpkg query.
set -euo pipefail
# package -> a file it installs, to tell whether it is there
declare -A WANT=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [iproute2]=/usr/sbin/ip
  [util-linux]=/usr/bin/nsenter
  [buildah]=/usr/bin/buildah
  [podman]=/usr/bin/podman
  [debootstrap]=/usr/sbin/debootstrap
  [gcc]=/usr/bin/gcc
  [libc6-dev]=/usr/lib/x86_64-linux-gnu/libc.a
  [openssl]=/usr/bin/openssl
)
missing=()
for package in "${!WANT[@]}"; do
  [ -e "${WANT[$package]}" ] || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[packages] node packages present" >&2
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "[packages] ERROR: root is needed to install: ${missing[*]}" >&2; exit 1; }
echo "[packages] installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts containerd as a service on install; the stack runs its own, so the system's is
# not needed and must not hold the default socket's resources.
if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
  systemctl disable --now containerd >/dev/null 2>&1 || true
fi
