#!/usr/bin/env bash
# README command 1: installs dependencies, builds, and runs the control plane (rcd) on the
# embedded RocksDB store, printing how to point kubectl and etcdctl at it.
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
trap 'kill $rcd_pid 2>/dev/null; wait $rcd_pid 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
# The demo: the example Deployment and Service, applied with the stock kubectl.
if command -v kubectl >/dev/null; then
  KUBECONFIG="$kubeconfig" kubectl apply -f "$root/examples/deployment.yaml" || true
  # The stdlib controllers (DSL, JIT-compiled) create the ReplicaSet and its pods.
  for _ in $(seq 1 50); do
    [ "$(KUBECONFIG="$kubeconfig" kubectl get pods -l app=web -o name 2>/dev/null | wc -l)" -ge 2 ] && break
    sleep 0.1
  done
  KUBECONFIG="$kubeconfig" kubectl get deploy,rs,pods,svc || true
  KUBECONFIG="$kubeconfig" kubectl get events || true
  KUBECONFIG="$kubeconfig" kubectl get controllers || true
  # An operator-defined type from examples/resources/widget.rc (DSL, compiled by rcd).
  KUBECONFIG="$kubeconfig" kubectl apply -f "$root/examples/widget.yaml" || true
  KUBECONFIG="$kubeconfig" kubectl get widgets || true
fi
cat <<MSG

rcd is running (pid $rcd_pid), data in $data_dir. In another shell:
  export KUBECONFIG=$kubeconfig
  kubectl get ns
  kubectl get deploy,rs,pods -A
  kubectl scale deploy web --replicas=5; kubectl get events -w
  kubectl get controllers    # edit examples/controllers/*.rc: recompiled and swapped live
  kubectl get widgets        # edit examples/resources/widget.rc and watch it change
  ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$etcd_port get / --prefix --keys-only
Press Ctrl-C to stop.
MSG
wait $rcd_pid
