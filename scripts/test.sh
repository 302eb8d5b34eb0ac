#!/usr/bin/env bash
# README command 2: installs dependencies, builds, and runs every test (ctest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "${RC_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "${RC_TEST_JOBS:-2}" --timeout 600 "$@"
