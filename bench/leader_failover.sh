#!/usr/bin/env bash
# Leader failover: two rcd on one real etcd; SIGKILL the leader; how long until the other holds the
# Lease kube-system/rc-controller-manager and reconciles. rcd's defaults (lease 2 s, renew
# deadline 1.5 s, retry 0.25 s) side by side with Kubernetes' (kube-controller-manager: 15 s,
# 10 s, 2 s), RUNS runs each, interleaved, reported as a ratio.
#
#   bash bench/leader_failover.sh
#
# Per run: a fresh etcd (Debian's, single member, loopback) and two rcd on it (--store etcd://),
# rcd-a started first and waited for until it holds the lease, then rcd-b; a Deployment created
# through rcd-b gets its pod from rcd-a (the leader). A few seconds later: a pod watch on rcd-b for
# a second Deployment, SIGKILL rcd-a, create that Deployment through rcd-b at once, then
#   - lease: SIGKILL -> the Lease's holderIdentity reads rcd-b (polled through rcd-b every 20 ms);
#   - reconciles: SIGKILL -> the second Deployment's first pod exists (Deployment -> ReplicaSet ->
#     Pod by rcd-b's controllers, seen on the watch).
# The expected lower bound is the lease duration: a candidate takes over only after the record has
# not changed for leaseDurationSeconds on its own clock (client-go's rule), plus up to one retry
# period.
#
# Environment (defaults): RUNS=5  SETTLE=3 (s with both running before the kill)
# Writes bench/results/leader_failover.md and .jsonl.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-5}
SETTLE=${SETTLE:-3}

bench_build rcd
bench_init failover
bench_wait_quiet
OUT_MD=$RESULTS_DIR/leader_failover.md
OUT_JSONL=$RESULTS_DIR/leader_failover.jsonl
: >"$BENCH_WORK/results.jsonl"

declare -A FLAGS=(
  [rcd]="--leader-elect-lease-duration 2 --leader-elect-renew-deadline 1.5 --leader-elect-retry-period 0.25"
  [kubernetes]="--leader-elect-lease-duration 15 --leader-elect-renew-deadline 10 --leader-elect-retry-period 2"
)
declare -A LEASE_S=([rcd]=2 [kubernetes]=15)

# start_member DIR NAME FLAGS...: sets MEMBER_PID, MEMBER_API.
start_member() {
  local dir=$1 name=$2; shift 2
  mkdir -p "$dir"
  "$BIN/rcd" --store "etcd://$ETCD_EP" --listen 127.0.0.1:0 --etcd-listen '' --identity "$name" --log-level info "$@" \
    >"$dir/$name.out" 2>"$dir/$name.log" &
  MEMBER_PID=$!
  bench_track "$MEMBER_PID"
  bench_wait_line "$dir/$name.out" "rcd ready" "$MEMBER_PID" 60 || { cat "$dir/$name.log" >&2; return 1; }
  MEMBER_API=$(sed -nE 's/.*api=([^ ]+).*/\1/p' "$dir/$name.out" | head -n1)
}

deployment() {  # deployment NAME: a 1-replica Deployment's JSON
  echo '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"'"$1"'"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"'"$1"'"}},"template":{"metadata":{"labels":{"app":"'"$1"'"}},"spec":{"containers":[{"name":"main","image":"busybox:1.36"}]}}}}'
}

run_once() {  # run_once CONFIG INDEX
  local config=$1 idx=$2
  local dir=$BENCH_WORK/run-$idx-$config
  mkdir -p "$dir"
  bench_start_etcd "$dir/etcd"
  # shellcheck disable=SC2086
  start_member "$dir" rcd-a ${FLAGS[$config]}
  local a_pid=$MEMBER_PID
  bench_wait_line "$dir/rcd-a.log" "rcd-a acquired lease" "$a_pid" 60
  # shellcheck disable=SC2086
  start_member "$dir" rcd-b ${FLAGS[$config]}
  local b_pid=$MEMBER_PID b_api=$MEMBER_API
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' "$b_api/apis/apps/v1/namespaces/default/deployments" \
    -d "$(deployment before)"
  python3 "$BENCH_DIR/watch_count.py" --url "$b_api" --path /api/v1/namespaces/default/pods --target 1 \
    --match '"name":"before-' --timeout 60 >/dev/null 2>&1 || { bench_log "$config run $idx: the leader made no pod"; return 1; }
  sleep "$SETTLE"
  if grep -q "rcd-b acquired" "$dir/rcd-b.log"; then bench_log "$config run $idx: rcd-b took the lease while rcd-a ran"; return 1; fi

  rm -f "$dir/watch.ready"
  python3 "$BENCH_DIR/watch_count.py" --url "$b_api" --path /api/v1/namespaces/default/pods --target 1 \
    --match '"name":"after-' --timeout 120 --ready-file "$dir/watch.ready" >"$dir/watch.out" 2>/dev/null &
  local watch_pid=$!
  bench_track "$watch_pid"
  for _ in $(seq 1 100); do [ -f "$dir/watch.ready" ] && break; sleep 0.05; done

  local t_kill
  t_kill=$(date +%s.%N)
  kill -KILL "$a_pid"
  wait "$a_pid" 2>/dev/null || true
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' "$b_api/apis/apps/v1/namespaces/default/deployments" \
    -d "$(deployment after)"
  # The lease, polled through rcd-b on one keep-alive connection.
  local t_lease
  t_lease=$(python3 - "$b_api" <<'PY'
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
deadline = time.time() + 120
while time.time() < deadline:
    conn.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/rc-controller-manager")
    r = conn.getresponse()
    body = r.read()
    if r.status == 200 and json.loads(body).get("spec", {}).get("holderIdentity") == "rcd-b":
        print("%.6f" % time.time())
        sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
PY
  ) || { bench_log "$config run $idx: rcd-b never took the lease"; return 1; }
  wait "$watch_pid" || { bench_log "$config run $idx: rcd-b did not reconcile within 120 s"; return 1; }
  local t_pod
  t_pod=$(grep '^RESULT ' "$dir/watch.out" | sed 's/^RESULT //' | python3 -c 'import json,sys; print(json.load(sys.stdin)["first"])')
  python3 -c 'import json,sys; k,l,p=map(float,sys.argv[3:6]); print(json.dumps({"config":sys.argv[1],"run":int(sys.argv[2]),"lease_s":round(l-k,3),"reconcile_s":round(p-k,3),"lease_duration_s":float(sys.argv[6])}))' \
    "$config" "$idx" "$t_kill" "$t_lease" "$t_pod" "${LEASE_S[$config]}" >>"$BENCH_WORK/results.jsonl"
  bench_log "$config run $idx: $(tail -1 "$BENCH_WORK/results.jsonl")"
  bench_stop "$b_pid"
  bench_stop "$ETCD_PID"
}

for i in $(seq 1 "$RUNS"); do
  for config in rcd kubernetes; do
    run_once "$config" "$i"
  done
done

cp "$BENCH_WORK/results.jsonl" "$OUT_JSONL"
python3 - "$BENCH_WORK/results.jsonl" "$OUT_MD" <<PY
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(v):
    v = sorted(v)
    return (v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2) if v else None
by = {c: [r for r in rows if r["config"] == c] for c in ("rcd", "kubernetes")}
out = ["# Leader failover after SIGKILL\n",
       "Generated by \`bench/leader_failover.sh\` on $(date -u +%Y-%m-%dT%H:%MZ) (RUNS=$RUNS, interleaved). Machine: $(bench_machine); "
       "CPU busy with other work before the run: ${BENCH_BUSY_AT_START}%.\n",
       "Two rcd on one etcd ($(etcd --version 2>/dev/null | head -1)), a fresh etcd per run. Seconds from SIGKILL of the leader to: "
       "the Lease kube-system/rc-controller-manager naming the survivor (lease), and the first pod of a Deployment created at the kill "
       "(reconciles: lease + controllers starting + Deployment -> ReplicaSet -> Pod).\n",
       "| flags | lease / renew deadline / retry | runs | lease p50 s | lease max s | reconciles p50 s | reconciles max s | lease p50 - lease duration |",
       "|---|---|---:|---:|---:|---:|---:|---:|"]
desc = {"rcd": "rcd defaults: 2 s / 1.5 s / 0.25 s", "kubernetes": "Kubernetes defaults: 15 s / 10 s / 2 s"}
for c, rs in by.items():
    if not rs:
        continue
    l = [r["lease_s"] for r in rs]; p = [r["reconcile_s"] for r in rs]
    out.append(f'| {c} | {desc[c]} | {len(rs)} | {med(l):.2f} | {max(l):.2f} | {med(p):.2f} | {max(p):.2f} | {med(l) - rs[0]["lease_duration_s"]:+.2f} |')
if by["rcd"] and by["kubernetes"]:
    lr = med([r["lease_s"] for r in by["kubernetes"]]) / med([r["lease_s"] for r in by["rcd"]])
    pr = med([r["reconcile_s"] for r in by["kubernetes"]]) / med([r["reconcile_s"] for r in by["rcd"]])
    out.append(f'\nKubernetes defaults / rcd defaults, p50: lease **{lr:.2f}x**, first reconcile **{pr:.2f}x** (rcd fails over that many times faster).')
out.append("\nPer run (s): " + "; ".join(f'{r["config"]} #{r["run"]}: lease {r["lease_s"]}, reconcile {r["reconcile_s"]}' for r in rows) + ".")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
for c, rs in by.items():
    if rs:
        print("SUMMARY " + json.dumps({"bench": "leader_failover", "config": c, "lease_p50_s": med([r["lease_s"] for r in rs]),
                                       "reconcile_p50_s": med([r["reconcile_s"] for r in rs])}))
PY
bench_log "wrote $OUT_MD"
cat "$OUT_MD"
