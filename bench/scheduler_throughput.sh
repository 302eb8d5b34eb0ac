#!/usr/bin/env bash
# Scheduler throughput with simulated nodes: how many pods/s rcd's scheduler binds.
#
#   bash bench/scheduler_throughput.sh
#
# For each node count N in NODES: a fresh rcd (embedded store, fsync on unless FSYNC=0, scheduler
# and controllers in-process, fresh data dir), `rc-agent --simulate N` (simulated nodes: 32 cpu,
# 256Gi, 110 pods each, label type=kwok; Leases renewed every 30 s), then PODS bare pods created
# as fast as the API takes them (bench/api_load, 16 keep-alive connections, POST), each asking
# for cpu 100m / memory 500Mi like scheduler_perf's pod-default.yaml. Two watches
# (bench/watch_count.py, no JSON parsing) count pods as they start matching
# fieldSelector=spec.nodeName!= (bound by the scheduler: pods/binding) and status.phase=Running
# (the simulated node's status write). Scheduled pods/s = PODS / (last binding - first binding),
# also over the 10 %..90 % window (steady state, without ramp-up and tail).
#
# Anchor (not a same-run peer): Kubernetes' scheduler_perf SchedulingBasic threshold of 270
# pods/s at 5000 nodes, on much larger machines (test/integration/scheduler_perf, 5000Nodes).
#
# Environment (defaults): NODES="1000 5000"  PODS=10000  NAMESPACE=bench  TIMEOUT=900 (per size)
#   FSYNC=0       pass --unsafe-no-fsync to rcd (the table says so)
#   SIM_AGENT     the simulated-node binary (default $BIN/rc-agent); run as
#                 SIM_AGENT --server URL --simulate N --simulate-prefix sim-
# Writes bench/results/scheduler.md (and scheduler.jsonl).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES=${NODES:-"1000 5000"}
PODS=${PODS:-10000}
NAMESPACE=${NAMESPACE:-bench}
TIMEOUT=${TIMEOUT:-900}
FSYNC=${FSYNC:-1}
SIM_AGENT=${SIM_AGENT:-$BIN/rc-agent}

if [ -z "${SIM_AGENT_BUILT:-}" ] && [ "$SIM_AGENT" = "$BIN/rc-agent" ]; then
  bench_build rcd api_load rc-agent
else
  bench_build rcd api_load
fi
bench_init scheduler
bench_wait_quiet
OUT_MD=$RESULTS_DIR/scheduler.md
OUT_JSONL=$RESULTS_DIR/scheduler.jsonl
: >"$BENCH_WORK/results.jsonl"
RCD_FLAGS=()
[ "$FSYNC" = 0 ] && RCD_FLAGS+=(--unsafe-no-fsync)

# scheduler_perf's config/templates/pod-default.yaml (pause container, 100m / 500Mi).
TEMPLATE='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"{name}","namespace":"'$NAMESPACE'"},"spec":{"containers":[{"name":"pause","image":"registry.k8s.io/pause:3.10","ports":[{"containerPort":80}],"resources":{"requests":{"cpu":"100m","memory":"500Mi"},"limits":{"cpu":"100m","memory":"500Mi"}}}]}}'

now() { date +%s.%N; }
count_nodes() {
  curl -sf --max-time 60 "$RCD_API/api/v1/nodes?labelSelector=type%3Dkwok" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo 0
}
# start_watch NAME FIELDSELECTOR: a watch_count.py on the bench namespace's pods; sets WATCH_PID.
start_watch() {
  local name=$1 sel=$2
  python3 "$BENCH_DIR/watch_count.py" --url "$RCD_API" \
    --path "/api/v1/namespaces/$NAMESPACE/pods?fieldSelector=$sel" \
    --target "$PODS" --timeout "$TIMEOUT" --ready-file "$dir/$name.ready" --label "N=$n $name" \
    >"$dir/$name.out" 2>"$dir/$name.err" &
  WATCH_PID=$!
  bench_track "$WATCH_PID"
  for _ in $(seq 1 100); do [ -f "$dir/$name.ready" ] && break; sleep 0.1; done
  [ -f "$dir/$name.ready" ] || { bench_log "the $name watch did not open"; exit 1; }
}

for n in $NODES; do
  dir=$BENCH_WORK/n$n
  BENCH_RCD_LOG_LEVEL=info bench_start_rcd "$dir" "${RCD_FLAGS[@]}"
  bench_wait_line "$dir/rcd.log" "acquired lease" "$RCD_PID" 30
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' "$RCD_API/api/v1/namespaces" \
    -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"'"$NAMESPACE"'"}}'

  bench_log "N=$n: starting $n simulated nodes"
  t_reg0=$(now)
  "$SIM_AGENT" --server "$RCD_API" --simulate "$n" --simulate-prefix sim- >"$dir/sim.out" 2>"$dir/sim.log" &
  SIM_PID=$!
  bench_track "$SIM_PID"
  for _ in $(seq 1 1200); do
    kill -0 "$SIM_PID" 2>/dev/null || { bench_log "the simulator exited"; cat "$dir/sim.log" >&2; exit 1; }
    [ "$(count_nodes)" -ge "$n" ] && break
    sleep 1
  done
  t_reg1=$(now)
  [ "$(count_nodes)" -ge "$n" ] || { bench_log "only $(count_nodes) of $n nodes registered"; exit 1; }
  sleep 3  # the simulator's pod informer syncs right after its last registration
  reg_s=$(echo "$t_reg1 - $t_reg0" | bc -l)
  bench_log "N=$n: nodes registered in ${reg_s}s"
  cpu0=$(bench_cpu_ms "$RCD_PID")
  sim_cpu0=$(bench_cpu_ms "$SIM_PID")

  start_watch bound "spec.nodeName%21%3D"
  BOUND_PID=$WATCH_PID
  start_watch running "status.phase%3DRunning"
  RUNNING_PID=$WATCH_PID

  bench_log "N=$n: creating $PODS pods"
  t0=$(now)
  "$BIN/api_load" --url "$RCD_API" --path "/api/v1/namespaces/$NAMESPACE/pods" --body-template "$TEMPLATE" \
    --name-prefix pod- --count "$PODS" --concurrency 16 --max-seconds "$TIMEOUT" --label "N=$n" --quiet \
    >"$dir/api_load.out"
  t_created=$(now)
  wait "$BOUND_PID" || bench_log "N=$n: not every pod was bound within ${TIMEOUT}s"
  wait "$RUNNING_PID" || bench_log "N=$n: not every pod went Running within ${TIMEOUT}s"
  cpu1=$(bench_cpu_ms "$RCD_PID")
  sim_cpu1=$(bench_cpu_ms "$SIM_PID")
  hwm=$(bench_hwm_kb "$RCD_PID")
  sim_hwm=$(bench_hwm_kb "$SIM_PID")
  sleep 11  # rc-agent --simulate logs its counters every 10 s
  sim_stats=$(cat "$dir/sim.out" "$dir/sim.log" | grep -o 'nodes=[0-9]*.*' | tail -n1 || true)
  pending=$(curl -sf "$RCD_API/api/v1/namespaces/$NAMESPACE/pods?fieldSelector=spec.nodeName%3D" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo "?")
  # Spread over nodes (the scheduler's spreading and least-allocated scores at work).
  spread=$(curl -sf "$RCD_API/api/v1/namespaces/$NAMESPACE/pods" | python3 -c '
import collections, json, sys
c = collections.Counter(p["spec"].get("nodeName", "") for p in json.load(sys.stdin)["items"])
c.pop("", None)
v = sorted(c.values())
print("%d nodes used, %d..%d pods per node" % (len(v), v[0], v[-1]) if v else "none")')

  python3 - "$dir" "$n" "$PODS" "$t0" "$t_created" "$reg_s" "$cpu0" "$cpu1" "$sim_cpu0" "$sim_cpu1" "$hwm" "$sim_hwm" \
    "$pending" "$spread" "$FSYNC" "$sim_stats" >>"$BENCH_WORK/results.jsonl" <<'EOF'
import json, sys
(d, n, pods, t0, t_created, reg_s, cpu0, cpu1, scpu0, scpu1, hwm, shwm, pending, spread, fsync,
 sim_stats) = sys.argv[1:]
def result(path):
    for line in open(path):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {}
b, r, load = result(d + "/bound.out"), result(d + "/running.out"), result(d + "/api_load.out")
pods, t0 = int(pods), float(t0)
def rate(res, a, z, frac):
    if res.get(a) and res.get(z) and res[z] > res[a]:
        return pods * frac / (res[z] - res[a])
    return None
out = {
    "nodes": int(n), "pods": pods, "fsync": fsync == "1", "register_s": float(reg_s),
    "create_s": float(t_created) - t0, "create_per_s": load.get("req_per_sec"),
    "bound": b.get("count"), "running": r.get("count"), "pending_after": pending,
    "sched_per_s": rate(b, "first", "done", 1.0), "sched_per_s_10_90": rate(b, "p10", "p90", 0.8),
    "first_bind_after_first_create_s": (b["first"] - t0) if b.get("first") else None,
    "all_bound_after_first_create_s": (b["done"] - t0) if b.get("done") else None,
    "all_running_after_first_create_s": (r["done"] - t0) if r.get("done") else None,
    "last_bind_to_last_running_s": (r["done"] - b["done"]) if r.get("done") and b.get("done") else None,
    "rcd_cpu_s": (int(cpu1) - int(cpu0)) / 1000, "sim_cpu_s": (int(scpu1) - int(scpu0)) / 1000,
    "rcd_hwm_mib": int(hwm) / 1024, "sim_hwm_mib": int(shwm) / 1024, "spread": spread,
    "sim_stats": sim_stats, "api_load": load,
}
print(json.dumps(out))
EOF
  tail -n1 "$BENCH_WORK/results.jsonl" >&2
  cp "$dir/sim.log" "$BENCH_WORK/sim-$n.log" 2>/dev/null || true
  bench_stop "$SIM_PID"
  bench_stop "$RCD_PID"
done

cp "$BENCH_WORK/results.jsonl" "$OUT_JSONL"
MACHINE=$(bench_machine)
python3 - "$BENCH_WORK/results.jsonl" "$MACHINE" "$BENCH_BUSY_AT_START" "$FSYNC" "$PODS" "$NODES" >"$OUT_MD" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
machine, busy, fsync, pods, nodes = sys.argv[2:]
f = lambda v, p=1: "—" if v is None else ("%.*f" % (p, v))
print("# Scheduler throughput with simulated nodes\n")
print("`bench/scheduler_throughput.sh` (NODES=\"%s\" PODS=%s%s). Machine: %s; %s%% busy at start.\n"
      % (nodes, pods, "" if fsync == "1" else " FSYNC=0: rcd --unsafe-no-fsync", machine, busy))
print("rcd (embedded RocksDB store, %s, scheduler + controllers in-process) and the simulated nodes "
      "(`rc-agent --simulate N`) and the load generator share the same 2 cores. Pods: bare, "
      "cpu 100m / memory 500Mi (scheduler_perf's pod-default), created by api_load (16 connections) "
      "while the scheduler runs. Scheduled pods/s = pods / (last binding - first binding) seen on a "
      "watch with fieldSelector spec.nodeName!=.\n" % ("fsync on" if fsync == "1" else "--unsafe-no-fsync"))
print("| nodes | pods | node registration s | pods created in s (create/s) | scheduled pods/s | 10-90 % pods/s | all bound after s | all Running after s | rcd CPU s | simulator CPU s | rcd peak RSS MiB | spread |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    cps = pods and r["create_s"] and int(pods) / r["create_s"]
    print("| %d | %d | %s | %s (%s) | **%s** | %s | %s | %s | %s | %s | %s | %s |" % (
        r["nodes"], r["pods"], f(r["register_s"]), f(r["create_s"]), f(cps, 0), f(r["sched_per_s"], 0),
        f(r["sched_per_s_10_90"], 0), f(r["all_bound_after_first_create_s"]), f(r["all_running_after_first_create_s"]),
        f(r["rcd_cpu_s"]), f(r["sim_cpu_s"]), f(r["rcd_hwm_mib"], 0), r["spread"]))
print("\nAnchor (not a same-run peer): Kubernetes scheduler_perf's SchedulingBasic threshold, 270 pods/s at "
      "5000 nodes, measured on much larger machines with the API server and etcd on their own cores.\n")
for r in rows:
    print("- N=%d: bound %s, Running %s, still unbound after the run %s; simulator: %s" % (
        r["nodes"], r["bound"], r["running"], r["pending_after"], r["sim_stats"] or "—"))
EOF
bench_log "wrote $OUT_MD"
cat "$OUT_MD" >&2
