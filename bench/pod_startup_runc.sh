#!/usr/bin/env bash
# Real-pod startup latency and node-agent memory (issue 5), on rcd + one rc-agent whose pods are
# networked inside a throwaway network namespace (nothing in the root namespace changes):
#  1. latency: N pods created one after another, each timed from the API create to phase
#     Running as the API shows it (client-side clock, 20 ms polling), p50/p99; runc's own share
#     (`runc create` + `runc start`, measured inside rc-shim) from the containers' state.
#  2. memory: a Deployment of M pods (busybox sleep); rc-agent RSS once all run (anchor:
#     kubelet <= 50 MiB in Kubernetes' node density tests), and the rc-shim processes' RSS.
# Usage: bench/pod_startup_runc.sh [N=30] [M=100]   (as root)
source "$(dirname "$0")/lib.sh"
N=${1:-30}
M=${2:-100}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
bench_init pod-startup-runc
bench_build rcd rc-agent rc-pause rc-shim
NS="rcbench-$$"
AGENT_STATE="$BENCH_WORK/agent"
agent_cleanup() {
  if [ -n "${API:-}" ]; then
    curl -s -o /dev/null -X DELETE "$API/apis/apps/v1/namespaces/default/deployments/many" || true
    curl -s -o /dev/null -X DELETE "$API/api/v1/namespaces/default/pods?gracePeriodSeconds=1" || true
    for _ in $(seq 1 150); do
      [ "$(curl -s "$API/api/v1/namespaces/default/pods" | grep -c '"uid"')" = 0 ] && break
      sleep 0.2
    done
  fi
  [ -n "${AGENT_PID:-}" ] && bench_stop "$AGENT_PID"
  "$BIN/rc-agent" reset --state-dir "$AGENT_STATE" --node-netns "/run/netns/$NS" >/dev/null 2>&1 || true
  ip netns del "$NS" 2>/dev/null || true
  bench_cleanup
}
trap agent_cleanup EXIT

port=$(bench_free_port)
"$BIN/rcd" --data-dir "$BENCH_WORK/data" --listen "127.0.0.1:$port" --etcd-listen "" --metrics-listen "" \
  >"$BENCH_WORK/rcd.out" 2>"$BENCH_WORK/rcd.log" &
bench_track $!
bench_wait_line "$BENCH_WORK/rcd.out" "rcd ready" $!
API="http://127.0.0.1:$port"
ip netns add "$NS"
ip -n "$NS" link set lo up
bash "$REPO_ROOT/scripts/build-busybox-image.sh" "$BENCH_WORK/busybox.tar" >/dev/null
"$BIN/rc-agent" images import "$BENCH_WORK/busybox.tar" --state-dir "$AGENT_STATE" >/dev/null
"$BIN/rc-agent" --server "$API" --node-name bench-node --state-dir "$AGENT_STATE" --node-netns "/run/netns/$NS" \
  --node-ip 127.0.0.1 --address 127.0.0.1 --port 0 --healthz-port -1 --max-pods $((M + N + 10)) \
  >"$BENCH_WORK/agent.out" 2>"$BENCH_WORK/agent.log" &
AGENT_PID=$!
bench_track $AGENT_PID
bench_wait_line "$BENCH_WORK/agent.out" "rc-agent ready" $AGENT_PID 30
sleep 1

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
lat=()
bench_log "latency: $N pods, one at a time"
for i in $(seq 1 "$N"); do
  body="{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"lat-$i\"},\"spec\":{\"terminationGracePeriodSeconds\":1,\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"imagePullPolicy\":\"IfNotPresent\",\"command\":[\"sleep\",\"3600\"]}]}}"
  t0=$(now_ms)
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$API/api/v1/namespaces/default/pods" -d "$body"
  while ! curl -s "$API/api/v1/namespaces/default/pods/lat-$i" | grep -q '"phase":"Running"'; do sleep 0.02; done
  lat+=($(( $(now_ms) - t0 )))
done
sorted=($(printf '%s\n' "${lat[@]}" | sort -n))
p50=${sorted[$(( N / 2 ))]}
p99=${sorted[$(( (N * 99 + 99) / 100 - 1 ))]}
runc_ms=$(cat "$AGENT_STATE"/runtime/containers/*/container.json | python3 -c '
import sys, json, statistics
v = []
for line in sys.stdin.read().replace("}{", "}\n{").splitlines():
    try:
        d = json.loads(line)
    except Exception:
        continue
    if d.get("runc_create_us"):
        v.append((d["runc_create_us"] + d.get("runc_start_us", 0)) / 1000)
print("%.0f" % statistics.median(v) if v else "n/a")')
bench_log "create -> Running p50 ${p50} ms, p99 ${p99} ms; runc create+start median ${runc_ms} ms"
curl -s -o /dev/null -X DELETE "$API/api/v1/namespaces/default/pods?gracePeriodSeconds=1"
for _ in $(seq 1 150); do
  [ "$(curl -s "$API/api/v1/namespaces/default/pods" | grep -c '"uid"')" = 0 ] && break
  sleep 0.2
done

bench_log "memory: a Deployment of $M pods"
rss_idle=$(bench_rss_kb "$AGENT_PID")
t0=$(now_ms)
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$API/apis/apps/v1/namespaces/default/deployments" -d "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"many\"},\"spec\":{\"replicas\":$M,\"selector\":{\"matchLabels\":{\"app\":\"many\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"many\"}},\"spec\":{\"terminationGracePeriodSeconds\":1,\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"imagePullPolicy\":\"IfNotPresent\",\"command\":[\"sleep\",\"3600\"]}]}}}}"
while [ "$(curl -s "$API/api/v1/namespaces/default/pods?labelSelector=app%3Dmany" | grep -o '"phase":"Running"' | wc -l)" -lt "$M" ]; do sleep 0.5; done
all_ms=$(( $(now_ms) - t0 ))
sleep 5  # a few probe/status rounds with everything running
rss=$(bench_rss_kb "$AGENT_PID")
hwm=$(bench_hwm_kb "$AGENT_PID")
shims=$(pgrep -f "rc-shim.*$AGENT_STATE" || true)  # measured only, never signalled
shim_kb=0; nshim=0
for p in $shims; do
  [ -r "/proc/$p/status" ] || continue
  shim_kb=$(( shim_kb + $(bench_rss_kb "$p") )); nshim=$((nshim + 1))
done
bench_log "$M pods Running in ${all_ms} ms; rc-agent RSS ${rss} kB (peak ${hwm} kB, idle ${rss_idle} kB); $nshim rc-shim ${shim_kb} kB"

out="$RESULTS_DIR/pod_startup_runc.md"
{
  echo "# Real-pod startup and rc-agent memory"
  echo
  echo "Command: \`sudo bench/pod_startup_runc.sh $N $M\` ($(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), runc $(runc --version | head -1 | awk '{print $3}'))."
  echo "rcd + one rc-agent, pods networked in a throwaway netns (CNI bridge + host-local + loopback), image busybox from the local store."
  echo
  echo "| measure | value | anchor |"
  echo "|---|---|---|"
  echo "| create -> Running, one pod at a time (N=$N), p50 | ${p50} ms | Kubernetes SLO: p99 <= 5 s |"
  echo "| create -> Running, p99 | ${p99} ms | |"
  echo "| of which runc create + runc start (median, inside rc-shim) | ${runc_ms} ms | |"
  echo "| Deployment of $M pods: create -> all Running | ${all_ms} ms | |"
  echo "| rc-agent RSS with $M pods running | $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB, idle $((rss_idle / 1024)) MiB) | kubelet <= 50 MiB (node density tests) |"
  echo "| rc-shim RSS, all $nshim together | $((shim_kb / 1024)) MiB | (containerd-shim per pod, not counted for kubelet) |"
} >"$out"
cat "$out"
