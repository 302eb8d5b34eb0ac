#!/usr/bin/env bash
# Installs every Debian 12 package rc needs to build, test and run. Idempotent:
# packages already present are skipped; `apt-get update` runs once per machine
# (marker in /var/lib/rc) unless RC_APT_UPDATE=1 forces it.
set -euo pipefail

PACKAGES=(
  # build toolchain
  build-essential cmake ninja-build ccache mold pkg-config git
  # compiler front end + back end (issue 3)
  antlr4 libantlr4-runtime-dev llvm-15-dev clang-15 libfuzzer-15-dev zlib1g-dev libzstd-dev libedit-dev libxml2-dev
  # store, RPC, HTTP, JSON, YAML, CLI, logging
  librocksdb-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev rapidjson-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev
  # tests
  libgtest-dev libgmock-dev googletest curl
  # node agent (issues 5, 6)
  libnftnl-dev libmnl-dev runc containernetworking-plugins busybox-static nftables iproute2
  # etcd: wire definitions for our gRPC endpoint, and the peer for tests/benchmarks
  golang-etcd-server-dev etcd-server etcd-client
  # benchmarks
  wrk nginx-light hyperfine
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
marker=/var/lib/rc/apt-updated
if [ ! -f "$marker" ] || [ "${RC_APT_UPDATE:-0}" = 1 ]; then
  $SUDO apt-get update -q
  $SUDO mkdir -p /var/lib/rc && $SUDO touch "$marker"
fi
# nginx-light must not start a server on port 80 at install time.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
