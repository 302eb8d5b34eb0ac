#!/usr/bin/env bash
# Pod startup latency with simulated nodes under churn: creation -> Running, as Kubernetes'
# pod startup SLO measures it (stateless pods, no image pulls: "observed via watch").
#
#   bash bench/pod_startup_sim.sh
#
# A fresh rcd (embedded store, fsync on unless FSYNC=0, scheduler + controllers in-process) and
# `rc-agent --simulate NODES`. Then an open-loop driver (Python, below) creates bare pods at RATE
# per second for DURATION seconds (one keep-alive connection, sends scheduled on absolute times,
# so a slow reply does not lower the rate) and deletes each pod LIFETIME seconds after its
# creation (graceful delete; the simulated node finishes it with grace 0), so creations and
# deletions run at RATE/s each. One watch on the namespace's pods records, per pod, when it was
# first seen bound (spec.nodeName), Running, and gone (DELETED). Latencies are from the moment the
# POST was sent (the creationTimestamp has 1 s resolution) to the watch event's arrival.
#
# Anchor (not a same-run peer): Kubernetes' pod startup SLO, p99 <= 5 s (clusterloader2
# measures it the same way, schedulable stateless pods, image pulls excluded).
#
# Environment (defaults): NODES=1000  RATE=50  DURATION=60  LIFETIME=10  NAMESPACE=churn
#   FSYNC=0     pass --unsafe-no-fsync to rcd
#   SIM_AGENT   the simulated-node binary (default $BIN/rc-agent --simulate)
# Writes bench/results/pod_startup.md (and pod_startup.jsonl).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES=${NODES:-1000}
RATE=${RATE:-50}
DURATION=${DURATION:-60}
LIFETIME=${LIFETIME:-10}
NAMESPACE=${NAMESPACE:-churn}
FSYNC=${FSYNC:-1}
SIM_AGENT=${SIM_AGENT:-$BIN/rc-agent}

if [ "$SIM_AGENT" = "$BIN/rc-agent" ]; then
  bench_build rcd rc-agent
else
  bench_build rcd
fi
bench_init pod-startup
bench_wait_quiet
OUT_MD=$RESULTS_DIR/pod_startup.md
OUT_JSONL=$RESULTS_DIR/pod_startup.jsonl
RCD_FLAGS=()
[ "$FSYNC" = 0 ] && RCD_FLAGS+=(--unsafe-no-fsync)

dir=$BENCH_WORK/run
BENCH_RCD_LOG_LEVEL=info bench_start_rcd "$dir" "${RCD_FLAGS[@]}"
bench_wait_line "$dir/rcd.log" "acquired lease" "$RCD_PID" 30
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' "$RCD_API/api/v1/namespaces" \
  -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"'"$NAMESPACE"'"}}'

bench_log "starting $NODES simulated nodes"
"$SIM_AGENT" --server "$RCD_API" --simulate "$NODES" --simulate-prefix sim- >"$dir/sim.out" 2>"$dir/sim.log" &
SIM_PID=$!
bench_track "$SIM_PID"
count_nodes() {
  curl -sf --max-time 60 "$RCD_API/api/v1/nodes?labelSelector=type%3Dkwok" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo 0
}
for _ in $(seq 1 1200); do
  kill -0 "$SIM_PID" 2>/dev/null || { bench_log "the simulator exited"; cat "$dir/sim.log" >&2; exit 1; }
  [ "$(count_nodes)" -ge "$NODES" ] && break
  sleep 1
done
[ "$(count_nodes)" -ge "$NODES" ] || { bench_log "only $(count_nodes) of $NODES nodes registered"; exit 1; }
sleep 3
cpu0=$(bench_cpu_ms "$RCD_PID")
sim_cpu0=$(bench_cpu_ms "$SIM_PID")

bench_log "churn: $RATE pods/s created and deleted for ${DURATION}s (lifetime ${LIFETIME}s) on $NODES nodes"
timeout $((DURATION + LIFETIME + 180)) python3 - "$RCD_API" "$NAMESPACE" "$RATE" "$DURATION" "$LIFETIME" \
  >"$dir/churn.out" 2>"$dir/churn.err" <<'EOF' &
import http.client, json, sys, threading, time, urllib.parse

url, ns, rate, duration, lifetime = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
u = urllib.parse.urlparse(url)
assert u.hostname in ("127.0.0.1", "localhost")
total = int(rate * duration)
sent, bound, running, gone, del_sent = {}, {}, {}, {}, {}
lock = threading.Lock()
errors = {"create": 0, "delete": 0}
watch_ready = threading.Event()

def watch():
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=duration + lifetime + 200)
    conn.request("GET", "/api/v1/namespaces/%s/pods?watch=1&timeoutSeconds=%d" % (ns, duration + lifetime + 150))
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    watch_ready.set()
    while True:
        line = resp.readline()
        if not line:
            return
        now = time.time()
        ev = json.loads(line)
        obj = ev.get("object", {})
        name = obj.get("metadata", {}).get("name", "")
        with lock:
            if ev["type"] == "DELETED":
                gone.setdefault(name, now)
                if len(gone) >= total:
                    return
                continue
            if obj.get("spec", {}).get("nodeName"):
                bound.setdefault(name, now)
            if obj.get("status", {}).get("phase") == "Running":
                running.setdefault(name, now)

def body(name):
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": "churn"}},
                       "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}})

def paced(op, times, out):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    max_lag = 0.0
    for i, at in enumerate(times):
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        max_lag = max(max_lag, time.time() - at)
        name = "pod-%d" % i
        try:
            t = time.time()
            if op == "create":
                with lock:
                    sent[name] = t
                conn.request("POST", "/api/v1/namespaces/%s/pods" % ns, body(name), {"Content-Type": "application/json"})
                want = (201,)
            else:
                with lock:
                    del_sent[name] = t
                conn.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (ns, name))
                want = (200, 202)
            r = conn.getresponse()
            r.read()
            if r.status not in want:
                errors[op] += 1
        except Exception:
            errors[op] += 1
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    out[op] = max_lag

w = threading.Thread(target=watch, daemon=True)
w.start()
watch_ready.wait(10)
start = time.time() + 0.5
create_times = [start + i / rate for i in range(total)]
delete_times = [t + lifetime for t in create_times]
lags = {}
c = threading.Thread(target=paced, args=("create", create_times, lags))
d = threading.Thread(target=paced, args=("delete", delete_times, lags))
c.start(); d.start(); c.join(); d.join()
w.join(timeout=60)

def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]
def summary(xs):
    return {"n": len(xs), "p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99), "max": max(xs) if xs else None}
with lock:
    to_bound = [bound[n] - sent[n] for n in sent if n in bound]
    to_running = [running[n] - sent[n] for n in sent if n in running]
    bound_to_running = [running[n] - bound[n] for n in sent if n in running and n in bound]
    deletion = [gone[n] - del_sent[n] for n in del_sent if n in gone]
    res = {"tool": "pod_churn", "rate": rate, "duration": duration, "lifetime": lifetime, "pods": total,
           "created": len(sent) - errors["create"], "errors": errors, "max_lag_s": lags,
           "create_to_bound_s": summary(to_bound), "create_to_running_s": summary(to_running),
           "bound_to_running_s": summary(bound_to_running), "delete_to_gone_s": summary(deletion),
           "never_running": total - len(to_running), "never_gone": total - len(deletion)}
print("RESULT " + json.dumps(res), flush=True)
EOF
CHURN_PID=$!
bench_track "$CHURN_PID"
wait "$CHURN_PID" || bench_log "the churn driver failed: $(tail -n 5 "$dir/churn.err")"
cpu1=$(bench_cpu_ms "$RCD_PID")
sim_cpu1=$(bench_cpu_ms "$SIM_PID")
hwm=$(bench_hwm_kb "$RCD_PID")
sleep 11  # rc-agent --simulate logs its counters every 10 s
sim_stats=$(cat "$dir/sim.out" "$dir/sim.log" | grep -o 'nodes=[0-9]*.*' | tail -n1 || true)
left=$(curl -sf "$RCD_API/api/v1/namespaces/$NAMESPACE/pods" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo "?")

MACHINE=$(bench_machine)
python3 - "$dir/churn.out" "$NODES" "$FSYNC" "$cpu0" "$cpu1" "$sim_cpu0" "$sim_cpu1" "$hwm" "$sim_stats" "$left" \
  "$MACHINE" "$BENCH_BUSY_AT_START" "$OUT_JSONL" "$RATE" "$DURATION" "$LIFETIME" >"$OUT_MD" <<'EOF'
import json, sys
(path, nodes, fsync, cpu0, cpu1, scpu0, scpu1, hwm, sim_stats, left, machine, busy, jsonl,
 rate, duration, lifetime) = sys.argv[1:]
r = {}
for line in open(path):
    if line.startswith("RESULT "):
        r = json.loads(line[7:])
r.update({"nodes": int(nodes), "fsync": fsync == "1", "rcd_cpu_s": (int(cpu1) - int(cpu0)) / 1000,
          "sim_cpu_s": (int(scpu1) - int(scpu0)) / 1000, "rcd_hwm_mib": int(hwm) / 1024,
          "sim_stats": sim_stats, "pods_left": left})
with open(jsonl, "w") as f:
    f.write(json.dumps(r) + "\n")
ms = lambda v: "—" if v is None else "%.0f" % (v * 1000)
print("# Pod startup latency with simulated nodes (churn)\n")
print("`bench/pod_startup_sim.sh` (NODES=%s RATE=%s DURATION=%s LIFETIME=%s%s). Machine: %s; %s%% busy at start.\n"
      % (nodes, rate, duration, lifetime, "" if fsync == "1" else " FSYNC=0: rcd --unsafe-no-fsync", machine, busy))
print("rcd (embedded RocksDB store, %s, scheduler + controllers in-process), `rc-agent --simulate %s` and the "
      "driver share the same 2 cores. Bare pods (cpu 100m / memory 500Mi) are created open-loop at %s/s and each "
      "deleted %s s after its creation (graceful delete finished by its simulated node), so %s creations and %s "
      "deletions per second. Latency: POST sent -> the pod's watch event with spec.nodeName (bound), with "
      "status.phase Running, and DELETE sent -> DELETED.\n" % ("fsync on" if fsync == "1" else "--unsafe-no-fsync",
                                                                 nodes, rate, lifetime, rate, rate))
print("| interval | pods | p50 ms | p90 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|")
for key, label in (("create_to_running_s", "**create -> Running**"), ("create_to_bound_s", "create -> bound (scheduler)"),
                   ("bound_to_running_s", "bound -> Running (simulated node)"), ("delete_to_gone_s", "delete -> gone")):
    s = r.get(key, {})
    print("| %s | %s | %s | %s | %s | %s |" % (label, s.get("n", 0), ms(s.get("p50")), ms(s.get("p90")), ms(s.get("p99")), ms(s.get("max"))))
print("\nAnchor (not a same-run peer): Kubernetes' pod startup SLO, p99 <= 5 s from creation to Running observed via watch.\n")
print("- pods: %s created (errors %s), never Running %s, never gone %s, left at the end %s; driver max lag behind "
      "schedule: %s" % (r.get("created"), r.get("errors"), r.get("never_running"), r.get("never_gone"), left, r.get("max_lag_s")))
print("- rcd CPU %.1f s over the run, peak RSS %.0f MiB; simulator CPU %.1f s; simulator: %s"
      % (r["rcd_cpu_s"], r["rcd_hwm_mib"], r["sim_cpu_s"], sim_stats or "—"))
EOF
bench_log "wrote $OUT_MD"
cat "$OUT_MD" >&2
