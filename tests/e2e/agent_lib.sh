# Helpers for e2e tests that run rc-agent (sourced after lib.sh, as root): node network
# namespaces named $TAG-<node>, agents started beside rcd with --node-netns, and a cleanup that
# removes pods (while the agents still run), agents, sandboxes, mounts and namespaces.
# Callers set AGENT_BIN (and may set AGENT_FLAGS, an array of extra rc-agent flags).
TAG="rce2e$$"
N1="$TAG-n1"; N2="$TAG-n2"
AGENT_FLAGS=()
declare -A AGENT_PID STATE
node_cleanup() {
  # Pods first, while the agents run (graceful, releases IPs); then anything left by force.
  if [ -n "${API:-}" ]; then
    k delete deploy --all --wait=false >/dev/null 2>&1 || true
    k delete pods --all --grace-period=1 --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
      [ -z "$(k get pods -o name 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  for n in n1 n2; do
    if [ -n "${AGENT_PID[$n]:-}" ]; then kill "${AGENT_PID[$n]}" 2>/dev/null || true; wait "${AGENT_PID[$n]}" 2>/dev/null || true; fi
    if [ -n "${STATE[$n]:-}" ] && [ -d "${STATE[$n]}" ]; then
      "$AGENT_BIN" reset --state-dir "${STATE[$n]}" --node-netns "/run/netns/$TAG-$n" >/dev/null 2>&1 || true
      # Anything still mounted under the state dir (a failed reset) goes before the files.
      grep " ${STATE[$n]}" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    fi
  done
  ip netns del "$N1" 2>/dev/null || true
  ip netns del "$N2" 2>/dev/null || true
  e2e_cleanup
}
trap node_cleanup EXIT

start_agent() {  # start_agent n1|n2
  local n=$1
  STATE[$n]="$E2E_WORK/agent-$n"
  mkdir -p "${STATE[$n]}" "$E2E_WORK/manifests-$n"
  "$AGENT_BIN" images import "$E2E_WORK/busybox.tar" --state-dir "${STATE[$n]}" >/dev/null
  "$AGENT_BIN" --server "$API" --node-name "$n" --state-dir "${STATE[$n]}" --node-netns "/run/netns/$TAG-$n" \
    --node-ip 127.0.0.1 --address 127.0.0.1 --port 0 --healthz-port 0 --pod-manifest-path "$E2E_WORK/manifests-$n" \
    "${AGENT_FLAGS[@]+"${AGENT_FLAGS[@]}"}" >"$E2E_WORK/agent-$n.out" 2>>"$E2E_WORK/agent-$n.log" &
  AGENT_PID[$n]=$!
  wait_for 30 grep -q "rc-agent ready" "$E2E_WORK/agent-$n.out" || { echo "agent $n did not start"; cat "$E2E_WORK/agent-$n.log"; exit 1; }
}
sandbox_of() {  # sandbox_of POD NODE -> the pod's network namespace file
  local n=$2
  local f
  f=$(grep -l "\"pod_name\":\"$1\"" "${STATE[$n]}"/runtime/sandboxes/*/sandbox.json 2>/dev/null | head -1)
  [ -n "$f" ] && echo "$(dirname "$f")/ns/net"
}
