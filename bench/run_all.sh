#!/usr/bin/env bash
# Runs every benchmark in turn (about 15-20 minutes on the 2-core machine) and prints the
# machine-readable SUMMARY lines at the end. Results: bench/results/*.md and *.jsonl.
#
#   bash bench/run_all.sh            # builds etcd_load, api_load, rc-etcd and rcd first
#   QUICK=1 bash bench/run_all.sh    # shorter: 1 round, no check perf m, 3 s wrk runs, 20k objects
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
bench_build etcd_load api_load rc-etcd rcd
export BENCH_NO_BUILD=1
if [ "${QUICK:-0}" = 1 ]; then
  export ROUNDS=${ROUNDS:-1} CHECK_PERF=${CHECK_PERF-s} REQUESTS=${REQUESTS:-5000} DURATION=${DURATION:-3}
  export OBJECTS=${OBJECTS:-20000}
fi
status=0
summaries=()
for b in store_vs_etcd api_vs_nginx rss; do
  bench_log "=== $b"
  log=$(mktemp "${BENCH_TMP:-/tmp}/rc-bench-$b.XXXXXX")
  set +e
  bash "./$b.sh" | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then bench_log "$b failed (exit $rc)"; status=1; fi
  while IFS= read -r line; do summaries+=("$line"); done < <(grep '^SUMMARY ' "$log" || true)
  rm -f "$log"
done
echo
printf '%s\n' "${summaries[@]+"${summaries[@]}"}"
exit $status
