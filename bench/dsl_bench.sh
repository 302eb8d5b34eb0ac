#!/usr/bin/env bash
# DSL compiler + JIT benchmarks (issue 3): cold compile of resources/ and stdlib/, one-file
# recompiles, and a JIT-compiled selector/filter loop against the same loop in C++.
# Usage: bash bench/dsl_bench.sh        (writes bench/results/dsl.md and appends dsl.jsonl)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BENCH_BUILD:-$root/build-bench}"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$build" dsl_bench >/dev/null
fi
out="$("$build/bin/dsl_bench" --rounds "${ROUNDS:-7}" "$root/resources" "$root/stdlib")"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "$out" | grep -v '^{'
  echo
  echo "Command: \`bash bench/dsl_bench.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, load average $load."
  echo "The C++ peer is the same loop hand-written over the same rapidjson values (bench/dsl_bench.cc)."
} > "$root/bench/results/dsl.md"
echo "$out" | grep '^{' >> "$root/bench/results/dsl.jsonl"
cat "$root/bench/results/dsl.md"
