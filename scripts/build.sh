#!/usr/bin/env bash
# Configures and builds rc into build/ (binaries in build/bin/). Extra args go to ninja.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${RC_BUILD_DIR:-$root/build}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${RC_BUILD_TYPE:-RelWithDebInfo}"
fi
# Two cores, lots of RAM: keep both busy.
ninja -C "$build" -j "${RC_JOBS:-$(nproc)}" "$@"
