#!/usr/bin/env bash
# Controller throughput: how fast rcd's controllers (the DSL Deployment and ReplicaSet
# controllers, stdlib/controllers/*.rc) turn Deployments into pods.
#
#   bash bench/controller_throughput.sh
#
# For each size N in SIZES: a fresh rcd (embedded store, fsync on, default flags, fresh data dir;
# no node agent, so pods stay Pending), one watch on pods (bench/watch_count.py), then N
# Deployments x REPLICAS replicas created at once through the HTTP API (bench/api_load, 16
# keep-alive connections, POST to 127.0.0.1). Measures the time from the first POST until all
# N*REPLICAS pods exist (ADDED on the watch), pods/s, the time to 10/50/90 % (a rate that drops
# as the cache grows shows up here), rcd's CPU time and peak RSS (VmHWM) at the end.
# The peer is the same run at the smaller size: pods/s at N=1000 vs N=100 is the scaling ratio
# (1.0 = linear).
#
# Environment (defaults): SIZES="100 1000"  REPLICAS=10  NAMESPACE=default  TIMEOUT=600 (per size)
#   NAMESPACES=1  >1: the Deployments are spread evenly over namespaces NAMESPACE-0..NAMESPACE-(K-1)
#                 (one api_load per namespace, concurrently; pods counted on an all-namespaces watch)
#   PROFILE=1  also record `perf record --call-graph dwarf` (PROFILE_HZ=99) of rcd during the largest
#              size; self and inclusive top symbols go to bench/results/controller_throughput.perf.txt
#              (perf.data stays in the work dir with BENCH_KEEP=1). Perf costs CPU: use the figures
#              of a run without it.
# Writes bench/results/controller_throughput.md and .jsonl (controller_throughput_nsK.* with NAMESPACES=K).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=${SIZES:-"100 1000"}
REPLICAS=${REPLICAS:-10}
NAMESPACE=${NAMESPACE:-default}
NAMESPACES=${NAMESPACES:-1}
if [ "$NAMESPACES" -gt 1 ]; then
  [ "$NAMESPACE" = default ] && NAMESPACE=bench
  NS_LIST=$(seq -f "$NAMESPACE-%g" 0 $((NAMESPACES - 1)))
  POD_PATH=/api/v1/pods
  RS_PATH=/apis/apps/v1/replicasets
else
  NS_LIST=$NAMESPACE
  POD_PATH=/api/v1/namespaces/$NAMESPACE/pods
  RS_PATH=/apis/apps/v1/namespaces/$NAMESPACE/replicasets
fi
TIMEOUT=${TIMEOUT:-600}
PROFILE=${PROFILE:-0}

bench_build rcd api_load
bench_init controllers
bench_wait_quiet
OUT_BASE=controller_throughput
[ "$NAMESPACES" -gt 1 ] && OUT_BASE=controller_throughput_ns$NAMESPACES
OUT_MD=$RESULTS_DIR/$OUT_BASE.md
OUT_JSONL=$RESULTS_DIR/$OUT_BASE.jsonl
: >"$BENCH_WORK/results.jsonl"
LARGEST=$(echo "$SIZES" | tr ' ' '\n' | sort -n | tail -1)

TEMPLATE='{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"{name}"},"spec":{"replicas":'$REPLICAS',"selector":{"matchLabels":{"app":"{name}"}},"template":{"metadata":{"labels":{"app":"{name}"}},"spec":{"containers":[{"name":"main","image":"busybox:1.36","command":["sleep","3600"]}]}}}}'

now() { date +%s.%N; }
count_items() {  # count_items PATH: number of items a LIST returns
  curl -sf --max-time 120 "$RCD_API$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'
}

for n in $SIZES; do
  pods=$((n * REPLICAS))
  dir=$BENCH_WORK/rcd-$n
  BENCH_RCD_LOG_LEVEL=info bench_start_rcd "$dir"
  bench_wait_line "$dir/rcd.log" "acquired lease" "$RCD_PID" 30
  for ns in $NS_LIST; do
    [ "$ns" = default ] && continue
    curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' "$RCD_API/api/v1/namespaces" \
      -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"'"$ns"'"}}'
  done
  sleep 1
  hwm_idle=$(bench_hwm_kb "$RCD_PID")
  cpu0=$(bench_cpu_ms "$RCD_PID")

  python3 "$BENCH_DIR/watch_count.py" --url "$RCD_API" --path "$POD_PATH" \
    --target "$pods" --timeout "$TIMEOUT" --ready-file "$dir/watch.ready" --label "N=$n pods" \
    >"$dir/watch.out" &
  WATCH_PID=$!
  bench_track "$WATCH_PID"
  for _ in $(seq 1 100); do [ -f "$dir/watch.ready" ] && break; sleep 0.1; done
  [ -f "$dir/watch.ready" ] || { bench_log "the pod watch did not open"; exit 1; }

  PERF_PID=""
  if [ "$PROFILE" = 1 ] && [ "$n" = "$LARGEST" ]; then
    perf record -F "${PROFILE_HZ:-99}" --call-graph dwarf,16384 -p "$RCD_PID" -o "$dir/perf.data" >"$dir/perf.log" 2>&1 &
    PERF_PID=$!
    bench_track "$PERF_PID"
    sleep 0.5
  fi

  bench_log "N=$n: creating $n Deployments x $REPLICAS replicas ($pods pods) in $NAMESPACES namespace(s) ($(echo $NS_LIST | cut -d' ' -f1)...)"
  per_ns=$(((n + NAMESPACES - 1) / NAMESPACES))
  conc=$((16 / NAMESPACES)); [ "$conc" -lt 1 ] && conc=1
  t0=$(now)
  load_pids=()
  left=$n
  for ns in $NS_LIST; do
    c=$((left < per_ns ? left : per_ns)); left=$((left - c))
    [ "$c" -gt 0 ] || continue
    "$BIN/api_load" --url "$RCD_API" --path "/apis/apps/v1/namespaces/$ns/deployments" --method POST \
      --body-template "$TEMPLATE" --name-prefix web- --count "$c" --concurrency "$conc" --label "deployments $ns" \
      --max-seconds 120 --quiet >"$dir/load-$ns.out" 2>&1 &
    load_pids+=($!)
    bench_track "$!"
  done
  for p in "${load_pids[@]}"; do wait "$p" || bench_log "api_load reported failures"; done
  t_created=$(now)
  ok=$(cat "$dir"/load-*.out | grep '^RESULT ' | sed 's/^RESULT //' | python3 -c 'import json,sys; print(sum(json.loads(l)["ok"] for l in sys.stdin))')
  bench_log "N=$n: $ok Deployments created in $(awk -v a="$t0" -v b="$t_created" 'BEGIN {printf "%.2f", b - a}') s; waiting for $pods pods"
  watch_rc=0
  wait "$WATCH_PID" || watch_rc=$?
  t_end=$(now)
  if [ -n "$PERF_PID" ]; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
  fi
  W=$(grep '^RESULT ' "$dir/watch.out" | sed 's/^RESULT //')
  [ "$watch_rc" = 0 ] || bench_log "N=$n: only $(echo "RESULT $W" | bench_json count) of $pods pods within ${TIMEOUT}s"
  cpu1=$(bench_cpu_ms "$RCD_PID")
  hwm=$(bench_hwm_kb "$RCD_PID")
  rss=$(bench_rss_kb "$RCD_PID")
  sleep 1.5  # the Controller objects' counters are published every second
  counters=$(curl -sf --max-time 30 "$RCD_API/apis/rc.dev/v1/controllers" | python3 -c '
import json, sys
out = {}
for c in json.load(sys.stdin).get("items", []):
    s = c.get("status", {})
    out[c["metadata"]["name"]] = {k: s.get(k, 0) for k in ("reconciles", "failures", "writes")}
print(json.dumps(out))' || echo '{}')
  rs_count=$(count_items "$RS_PATH")
  pod_count=$(count_items "$POD_PATH")
  echo "{\"deployments\":$n,\"replicas\":$REPLICAS,\"target_pods\":$pods,\"t0\":$t0,\"t_created\":$t_created,\"t_end\":$t_end,\"watch\":$W,\"rcd_cpu_ms\":$((cpu1 - cpu0)),\"hwm_kb\":$hwm,\"hwm_idle_kb\":$hwm_idle,\"rss_kb\":$rss,\"replicasets\":$rs_count,\"pods_listed\":$pod_count,\"controllers\":$counters}" \
    >>"$BENCH_WORK/results.jsonl"
  bench_log "N=$n: $pod_count pods, $rs_count ReplicaSets; rcd peak RSS $((hwm / 1024)) MiB, CPU $(((cpu1 - cpu0) / 1000)) s"
  if [ -n "$PERF_PID" ]; then
    {
      echo "## self time, top symbols"
      perf report -i "$dir/perf.data" --no-children -g none --sort symbol --stdio --percent-limit 0.7 2>/dev/null |
        grep '%' | cut -c1-160 || true
      echo "## inclusive time (children) of the runtime's and controllers' own functions"
      perf report -i "$dir/perf.data" --children -g none --sort symbol --stdio --percent-limit 1 2>/dev/null | grep '%' |
        grep -E 'rc_|rc::|Informer|Controller|Reconcile|EffectList|CopyFrom|RocksStore|HttpServer|Watch' | cut -c1-160 | head -60 || true
    } >"$dir/perf-top.txt"
    bench_log "perf (self time, top symbols) of rcd during N=$n:"
    cat "$dir/perf-top.txt" >&2
    cp "$dir/perf-top.txt" "$RESULTS_DIR/$OUT_BASE.perf.txt"
  fi
  bench_stop "$RCD_PID"
done

cp "$BENCH_WORK/results.jsonl" "$OUT_JSONL"
python3 - "$BENCH_WORK/results.jsonl" "$OUT_MD" <<PY
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def rate(r):
    w = r["watch"]
    return w["count"] / (w["done"] - r["t0"]) if w["done"] else None
def rel(r, key):
    v = r["watch"][key]
    return f'{v - r["t0"]:.2f}' if v else "–"
out = ["# Controller throughput: Deployments -> pods\n",
       "Generated by \`bench/controller_throughput.sh\` on $(date -u +%Y-%m-%dT%H:%MZ) (SIZES=\"$SIZES\" REPLICAS=$REPLICAS NAMESPACE=$NAMESPACE NAMESPACES=$NAMESPACES). "
       "Machine: $(bench_machine); CPU busy with other work before the run: ${BENCH_BUSY_AT_START}%.\n",
       "A fresh rcd per size (embedded store, fsync on, default flags, no node agent: pods stay Pending). "
       "N Deployments x $REPLICAS replicas POSTed at once (api_load, 16 connections); times are seconds from the first POST, "
       "pods counted as ADDED events on one pod watch. CPU = rcd user+sys during the run; peak = VmHWM at the end.\n",
       "| Deployments | pods | Deployments POSTed | first pod | 10 % | 50 % | 90 % | all pods | pods/s | rcd CPU s | CPU ms/pod | peak RSS MiB (idle) |",
       "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    w = r["watch"]
    pr = rate(r)
    out.append(f'| {r["deployments"]} | {w["count"]}/{r["target_pods"]} | {r["t_created"] - r["t0"]:.2f} | {rel(r, "first")} | {rel(r, "p10")} | '
               f'{rel(r, "p50")} | {rel(r, "p90")} | {rel(r, "done")} | {pr:.0f} | {r["rcd_cpu_ms"] / 1000:.1f} | '
               f'{r["rcd_cpu_ms"] / max(w["count"], 1):.2f} | {r["hwm_kb"] / 1024:.0f} ({r["hwm_idle_kb"] / 1024:.0f}) |'
               if pr else
               f'| {r["deployments"]} | {w["count"]}/{r["target_pods"]} | {r["t_created"] - r["t0"]:.2f} | {rel(r, "first")} | {rel(r, "p10")} | '
               f'{rel(r, "p50")} | {rel(r, "p90")} | timeout | – | {r["rcd_cpu_ms"] / 1000:.1f} | – | {r["hwm_kb"] / 1024:.0f} ({r["hwm_idle_kb"] / 1024:.0f}) |')
done = [r for r in rows if rate(r)]
if len(done) >= 2:
    small, big = done[0], done[-1]
    out.append(f'\nScaling: pods/s at {big["deployments"]} Deployments vs {small["deployments"]}: '
               f'{rate(big):.0f} / {rate(small):.0f} = **{rate(big) / rate(small):.2f}x** (1.00x = linear); '
               f'CPU per pod {big["rcd_cpu_ms"] / big["watch"]["count"]:.2f} vs {small["rcd_cpu_ms"] / small["watch"]["count"]:.2f} ms '
               f'= {(big["rcd_cpu_ms"] / big["watch"]["count"]) / (small["rcd_cpu_ms"] / small["watch"]["count"]):.2f}x.')
out.append("\nController counters at the end (reconciles / failed / writes, from the rc.dev/v1 Controller objects): " + "; ".join(
    f'N={r["deployments"]}: ' + ", ".join(f'{n} {c["reconciles"]}/{c["failures"]}/{c["writes"]}' for n, c in sorted(r.get("controllers", {}).items()))
    + f' ({r.get("controllers", {}).get("replicaset", {}).get("reconciles", 0) / max(r["deployments"], 1):.1f} ReplicaSet reconciles per ReplicaSet)'
    for r in rows) + ".")
out.append("\nEnd state checked by LIST: " + "; ".join(f'N={r["deployments"]}: {r["pods_listed"]} pods, {r["replicasets"]} ReplicaSets' for r in rows) + ".")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
for r in rows:
    print("SUMMARY " + json.dumps({"bench": "controller_throughput", "deployments": r["deployments"], "pods": r["watch"]["count"],
                                   "pods_per_sec": rate(r), "hwm_kb": r["hwm_kb"], "rcd_cpu_ms": r["rcd_cpu_ms"]}))
PY
bench_log "wrote $OUT_MD"
cat "$OUT_MD"
