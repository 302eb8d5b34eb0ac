#!/usr/bin/env bash
# Configures and builds rc into build/ (binaries in build/bin/). Extra args go to ninja.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${RC_BUILD_DIR:-$root/build}"
# ccache: paths relative to the checkout and no build-dir hashing, so another clone or build
# directory (CI's fresh clone, a second build dir) reuses the objects this machine compiled.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-20G}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${RC_BUILD_TYPE:-RelWithDebInfo}"
fi
# Two cores, lots of RAM: keep both busy.
ninja -C "$build" -j "${RC_JOBS:-$(nproc)}" "$@"
