#!/usr/bin/env bash
# Services end to end (issue 6): rcd allocates the ClusterIP and NodePort, rc-agent's service
# proxy programs nftables (table ip rc-proxy) in the node's network namespace, and real pods
# (busybox httpd under runc, CNI bridge) serve real traffic: load spread over 3 backends, scale
# to 1 within a second, NodePort from an outside namespace, hairpin, refusal without endpoints,
# SIGKILL of the agent (traffic keeps flowing, ruleset converges), an external flush healed.
# Nothing in the root namespace changes; everything is removed at the end, also on failure.
# Usage: service_proxy_e2e.sh RCD RC_AGENT [KUBECTL]   (as root)
source "$(dirname "$0")/lib.sh"
RCD_BIN=$1
AGENT_BIN=$2
KUBECTL=${3:-kubectl}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
k() { "$KUBECTL" --request-timeout=30s "$@"; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, runc, nftables)"; exit 0; }
source "$(dirname "$0")/agent_lib.sh"
OUT="$TAG-out"
trap 'ip netns del "$OUT" 2>/dev/null || true; node_cleanup' EXIT

start_rcd "$RCD_BIN" --cluster-cidr 10.78.0.0/16 --service-cluster-ip-range 10.96.0.0/16 --metrics-listen ""
bash "$REPO/scripts/build-busybox-image.sh" "$E2E_WORK/busybox.tar" >/dev/null
# The node namespace and an "outside" client linked to it.
ip netns add "$N1"; ip netns add "$OUT"
ip -n "$N1" link set lo up; ip -n "$OUT" link set lo up
ip netns exec "$N1" sysctl -qw net.ipv4.ip_forward=1
ip link add "${TAG}n" netns "$N1" type veth peer name "${TAG}o" netns "$OUT"
ip -n "$N1" addr add 192.168.252.1/24 dev "${TAG}n"; ip -n "$N1" link set "${TAG}n" up
ip -n "$OUT" addr add 192.168.252.2/24 dev "${TAG}o"; ip -n "$OUT" link set "${TAG}o" up
AGENT_FLAGS=(--proxy-resync-seconds 2 --cluster-cidr 10.78.0.0/16)
start_agent n1

k apply -f - >/dev/null <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend}
spec:
  replicas: 3
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {tcpSocket: {port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  type: NodePort
  selector: {app: backend}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: busybox, imagePullPolicy: IfNotPresent, command: ["sleep", "100000"]}]
YAML
check "3 backends Ready and in the Endpoints" wait_for 60 bash -c "[ \$($KUBECTL get endpoints backend -o 'jsonpath={.subsets[*].addresses[*].ip}' | wc -w) -eq 3 ]"
check "the client pod runs" wait_for 30 bash -c "[ \"\$($KUBECTL get pod client -o 'jsonpath={.status.phase}')\" = Running ]"
VIP=$(k get svc backend -o jsonpath='{.spec.clusterIP}')
NODEPORT=$(k get svc backend -o jsonpath='{.spec.ports[0].nodePort}')
expect_out "rcd allocated a ClusterIP ($VIP) and a NodePort ($NODEPORT)" '^10\.96\.[0-9]+\.[0-9]+ 3[0-9]{4}$' echo "$VIP $NODEPORT"
CLIENT_NET=$(sandbox_of client n1)
get() { nsenter --net="$1" timeout 3 busybox wget -qO- "$2" 2>&1; }
check "the proxy programmed the ClusterIP" wait_for 20 bash -c "nsenter --net='$CLIENT_NET' timeout 3 busybox wget -qO- http://$VIP/ >/dev/null 2>&1"

nsenter --net="$CLIENT_NET" sh -c "for i in \$(seq 1 300); do timeout 3 busybox wget -qO- http://$VIP/ 2>/dev/null || echo FAILED; done" >"$E2E_WORK/300.txt"
expect_out "300 requests from a client pod to ClusterIP:80 all succeed" '^300 0$' \
  bash -c "echo \$(grep -c '^backend-' '$E2E_WORK/300.txt') \$(grep -c FAILED '$E2E_WORK/300.txt')"
expect_out "every backend serves at least 15% of them" '^3 ok$' bash -c "
  sort '$E2E_WORK/300.txt' | uniq -c | awk '\$1 >= 45 {n++} END {print n, (n == 3 ? \"ok\" : \"low\")}'"
sort "$E2E_WORK/300.txt" | uniq -c | sed 's/^/#   /'

NODE_NET=/run/netns/$N1
expect_out "NodePort answers on the node's address from an outside namespace" '^backend-' \
  ip netns exec "$OUT" timeout 3 busybox wget -qO- "http://192.168.252.1:$NODEPORT/"
expect_out "a Service without endpoints refuses at once (not a timeout)" '^refused in [0-9]+ ms$' bash -c "
  VIP2=\$($KUBECTL get svc nobody -o 'jsonpath={.spec.clusterIP}')
  t0=\$(date +%s%N); out=\$(nsenter --net='$CLIENT_NET' timeout 5 busybox wget -qO- http://\$VIP2/ 2>&1); t1=\$(date +%s%N)
  ms=\$(( (t1 - t0) / 1000000 )); echo \"\$out\" | grep -qi refused && [ \$ms -lt 1000 ] && echo \"refused in \$ms ms\" || echo \"\$out (\$ms ms)\""

# SIGKILL of the agent (and its proxy): the rules stay, traffic keeps flowing.
ip netns exec "$N1" nft list table ip rc-proxy | grep -v '^\s*$' | sort >"$E2E_WORK/ruleset-before.txt"
kill -9 "${AGENT_PID[n1]}"; wait "${AGENT_PID[n1]}" 2>/dev/null || true
expect_out "with the proxy killed, the ClusterIP still answers" '^backend-' get "$CLIENT_NET" "http://$VIP/"
: >"$E2E_WORK/agent-n1.out"
"$AGENT_BIN" --server "$API" --node-name n1 --state-dir "${STATE[n1]}" --node-netns "/run/netns/$N1" \
  --node-ip 127.0.0.1 --address 127.0.0.1 --port 0 --healthz-port 0 "${AGENT_FLAGS[@]}" \
  >"$E2E_WORK/agent-n1.out" 2>>"$E2E_WORK/agent-n1.log" &
AGENT_PID[n1]=$!
wait_for 30 grep -q "rc-agent ready" "$E2E_WORK/agent-n1.out"
sleep 2
ip netns exec "$N1" nft list table ip rc-proxy | grep -v '^\s*$' | sort >"$E2E_WORK/ruleset-after.txt"
expect_out "after the restart the ruleset converges to the same content" '^same$' \
  bash -c "diff '$E2E_WORK/ruleset-before.txt' '$E2E_WORK/ruleset-after.txt' >/dev/null && echo same || diff '$E2E_WORK/ruleset-before.txt' '$E2E_WORK/ruleset-after.txt' | head"

ip netns exec "$N1" nft flush table ip rc-proxy
expect_fail "after an external 'nft flush table' the ClusterIP is gone" '.' get "$CLIENT_NET" "http://$VIP/"
check "the periodic resync (2 s) heals it" wait_for 10 bash -c "nsenter --net='$CLIENT_NET' timeout 3 busybox wget -qO- http://$VIP/ | grep -q '^backend-'"

# Scale to one backend: within 1 s of the Endpoints change only that pod answers.
k scale deploy backend --replicas=1 >/dev/null
wait_for 30 bash -c "[ \$($KUBECTL get endpoints backend -o 'jsonpath={.subsets[*].addresses[*].ip}' | wc -w) -eq 1 ]"
sleep 1
LAST=$(k get endpoints backend -o 'jsonpath={.subsets[0].addresses[0].targetRef.name}')
nsenter --net="$CLIENT_NET" sh -c "for i in \$(seq 1 30); do timeout 3 busybox wget -qO- http://$VIP/ 2>/dev/null || echo FAILED; done" >"$E2E_WORK/30.txt"
expect_out "1 s after scaling to 1, all 30 requests reach $LAST" '^30$' grep -c "^$LAST\$" "$E2E_WORK/30.txt"
LAST_NET=$(sandbox_of "$LAST" n1)
expect_out "hairpin: the backend reaches itself through its own Service" "^$LAST\$" get "$LAST_NET" "http://$VIP/"
finish
