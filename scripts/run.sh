#!/usr/bin/env bash
# README command 1: installs dependencies, builds, and runs the control plane (rcd) on the
# embedded RocksDB store plus one node agent (rc-agent) whose pods live behind a bridge in a
# network namespace of their own (rc-demo-node: nothing in this machine's network changes), then
# a demo, printing how to point kubectl and etcdctl at it.
# Usage: scripts/run.sh [DATA_DIR]   (default: a fresh temporary directory)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
data_dir="${1:-$(mktemp -d /tmp/rcd-data.XXXXXX)}"
api_port="${RC_API_PORT:-6443}"
etcd_port="${RC_ETCD_PORT:-2379}"
mkdir -p "$data_dir"
kubeconfig="$data_dir/kubeconfig"
cat > "$kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
- cluster:
    server: http://127.0.0.1:$api_port
  name: rc
contexts:
- context:
    cluster: rc
    user: rc
  name: rc
current-context: rc
users:
- name: rc
  user: {}
KCFG
"$root/build/bin/rcd" --data-dir "$data_dir" --listen "127.0.0.1:$api_port" \
  --etcd-listen "127.0.0.1:$etcd_port" --resources "$root/examples/resources" \
  --controllers "$root/examples/controllers" &
rcd_pid=$!
agent_pid=""
node_netns="rc-demo-node-$$"
agent_state="$data_dir/agent"
stopped=""
stop_all() {
  set +e  # best effort: every step runs even when an earlier one fails
  [ -n "$stopped" ] && return
  stopped=1
  if [ -n "$agent_pid" ]; then
    # Pods go first (graceful), then the agent, then whatever is left of its sandboxes.
    KUBECONFIG="$kubeconfig" kubectl delete deploy,pods --all --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
      [ -z "$(KUBECONFIG="$kubeconfig" kubectl get pods -o name 2>/dev/null)" ] && break
      sleep 0.2
    done
    kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null
    "$root/build/bin/rc-agent" reset --state-dir "$agent_state" --node-netns "/run/netns/$node_netns" >/dev/null 2>&1 || true
    ip netns del "$node_netns" 2>/dev/null || true
  fi
  kill $rcd_pid 2>/dev/null; wait $rcd_pid 2>/dev/null
  return 0
}
trap stop_all INT TERM EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
# The node: rc-agent beside rcd, its pods networked inside $node_netns (CNI bridge rc0).
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v runc >/dev/null; then
  ip netns add "$node_netns"
  ip -n "$node_netns" link set lo up
  "$root/scripts/build-busybox-image.sh" "$data_dir/busybox.tar" >/dev/null
  "$root/build/bin/rc-agent" images import "$data_dir/busybox.tar" --state-dir "$agent_state"
  "$root/build/bin/rc-agent" --server "http://127.0.0.1:$api_port" --node-name rc-node-1 --state-dir "$agent_state" \
    --node-netns "/run/netns/$node_netns" --node-ip 127.0.0.1 --address 127.0.0.1 --port 0 --healthz-port 0 \
    >"$data_dir/agent.out" 2>"$data_dir/agent.log" &
  agent_pid=$!
  for _ in $(seq 1 100); do grep -q "rc-agent ready" "$data_dir/agent.out" 2>/dev/null && break; sleep 0.1; done
  cat "$data_dir/agent.out"
else
  echo "(not root, or no ip/runc: running without a node agent; pods stay Pending)"
fi
# The demo: the example Deployment and Service, applied with the stock kubectl.
if command -v kubectl >/dev/null; then
  # Without a node agent the example Deployment's pods stay Pending (nginx is not in the image
  # store either); with one, examples/web.yaml below runs real pods.
  [ -z "$agent_pid" ] && { KUBECONFIG="$kubeconfig" kubectl apply -f "$root/examples/deployment.yaml" || true; }
  # The stdlib controllers (DSL, JIT-compiled) create the ReplicaSet and its pods.
  for _ in $(seq 1 50); do
    [ -n "$agent_pid" ] && break
    [ "$(KUBECONFIG="$kubeconfig" kubectl get pods -l app=web -o name 2>/dev/null | wc -l)" -ge 2 ] && break
    sleep 0.1
  done
  KUBECONFIG="$kubeconfig" kubectl get deploy,rs,pods,svc || true
  KUBECONFIG="$kubeconfig" kubectl get events || true
  KUBECONFIG="$kubeconfig" kubectl get controllers || true
  # Real pods: busybox httpd on the node agent (rc-pause sandbox, CNI bridge, runc).
  if [ -n "$agent_pid" ]; then
    KUBECONFIG="$kubeconfig" kubectl apply -f "$root/examples/web.yaml" || true
    KUBECONFIG="$kubeconfig" kubectl rollout status deploy/hello --timeout=60s || true
    KUBECONFIG="$kubeconfig" kubectl get pods -l app=hello -o wide || true
    ip=$(KUBECONFIG="$kubeconfig" kubectl get pods -l app=hello -o 'jsonpath={.items[0].status.podIP}' 2>/dev/null || true)
    [ -n "$ip" ] && echo "GET http://$ip:8080/ from the node: $(ip netns exec "$node_netns" busybox wget -qO- "http://$ip:8080/" 2>&1)"
  fi
  # An operator-defined type from examples/resources/widget.rc (DSL, compiled by rcd).
  KUBECONFIG="$kubeconfig" kubectl apply -f "$root/examples/widget.yaml" || true
  KUBECONFIG="$kubeconfig" kubectl get widgets || true
fi
cat <<MSG

rcd is running (pid $rcd_pid), node agent ${agent_pid:-not running}, data in $data_dir. In another shell:
  export KUBECONFIG=$kubeconfig
  kubectl get ns
  kubectl get deploy,rs,pods -A
  kubectl scale deploy hello --replicas=5; kubectl get events -w
  kubectl get nodes -o wide; kubectl get pods -o wide
  kubectl logs -l app=hello; kubectl logs -f deploy/hello
  sudo ip netns exec $node_netns busybox wget -qO- http://POD_IP:8080/   # the pods' network
  kubectl get controllers    # edit examples/controllers/*.rc: recompiled and swapped live
  kubectl get widgets        # edit examples/resources/widget.rc and watch it change
  ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$etcd_port get / --prefix --keys-only
Press Ctrl-C to stop.
MSG
wait $rcd_pid
