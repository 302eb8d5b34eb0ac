#!/usr/bin/env bash
# Service addresses with the stock kubectl against a real rcd: ClusterIP allocation from
# --service-cluster-ip-range (kubectl create service / expose), NodePort allocation, requested
# values honoured once (422 "already allocated" for a second), headless None, ExternalName
# without an address, immutability, release on delete and on type change, and allocations kept
# across an rcd restart (the reservation keys live in the store).
# With an etcd binary: two rcd on one etcd create Services in parallel and never share an IP.
# Usage: service_ip_e2e.sh RCD_BINARY [KUBECTL] [ETCD_BINARY]
source "$(dirname "$0")/lib.sh"
RCD_BIN=$1
KUBECTL=${2:-kubectl}
ETCD_BIN=${3:-}
PIDS=()
cleanup_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  e2e_cleanup
}
trap cleanup_all EXIT
k() { "$KUBECTL" --request-timeout=30s "$@"; }
FLAGS=(--service-cluster-ip-range 10.100.0.0/24 --service-node-port-range 30000-30999 --metrics-listen "" --no-scheduler)
start_rcd "$RCD_BIN" "${FLAGS[@]}"

ip_of() { k get svc "$1" -o 'jsonpath={.spec.clusterIP}'; }
in_range() { [[ "$(ip_of "$1")" =~ ^10\.100\.0\.([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 2 ] && [ "${BASH_REMATCH[1]}" -le 254 ]; }

k create service clusterip web --tcp=80:8080 >/dev/null
check "create service clusterip: an IP of the range" in_range web
expect_out "kubectl get svc shows it" "^web +ClusterIP +$(ip_of web | sed 's/\./\\./g') +<none> +80/TCP" k get svc web --no-headers
expect_out "spec.clusterIPs mirrors spec.clusterIP" "^$(ip_of web) \[\"$(ip_of web)\"\]$" \
  k get svc web -o 'jsonpath={.spec.clusterIP} {.spec.clusterIPs}'

k create deployment dep --image=nginx --port=8080 >/dev/null
k expose deployment dep --port=80 --target-port=8080 >/dev/null
check "kubectl expose: an IP of the range" in_range dep

k create service nodeport np --tcp=80:8080 >/dev/null
expect_out "a NodePort service shows 80:3xxxx/TCP" '^np +NodePort +10\.100\.0\.[0-9]+ +<none> +80:30[0-9]{3}/TCP' k get svc np --no-headers
k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  ports: [{port: 443}]
YAML
expect_out "a LoadBalancer service gets a node port too" '^lb +LoadBalancer +10\.100\.0\.[0-9]+ +<pending> +443:30[0-9]{3}/TCP' k get svc lb --no-headers

k create service clusterip fixed --clusterip=10.100.0.50 --tcp=80 >/dev/null
expect_out "a requested clusterIP is honoured" '^10\.100\.0\.50$' ip_of fixed
expect_fail "the same IP again -> already allocated" \
  'Service "dup" is invalid: spec.clusterIP: Invalid value: "10.100.0.50": provided IP is already allocated' \
  k create service clusterip dup --clusterip=10.100.0.50 --tcp=80
code=$(curl -s -o "$E2E_WORK/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "$API/api/v1/namespaces/default/services" \
  -d '{"apiVersion":"v1","kind":"Service","metadata":{"name":"dup"},"spec":{"clusterIP":"10.100.0.50","ports":[{"port":80}]}}')
expect_out "... as a 422 Invalid with the field path" '^422 .*"reason":"Invalid".*"field":"spec.clusterIP"' \
  bash -c "echo $code \$(cat $E2E_WORK/body)"
expect_fail "an IP outside the range -> 422" 'spec.clusterIP: Invalid value: "10.0.0.1": provided IP is not in the valid range. The range of valid IPs is 10.100.0.0/24' \
  k create service clusterip out --clusterip=10.0.0.1 --tcp=80
expect_fail "clusterIP is immutable" 'spec.clusterIP: Invalid value: "10.100.0.51": field is immutable' \
  k patch svc fixed -p '{"spec":{"clusterIP":"10.100.0.51"}}'

k create service nodeport np2 --tcp=80:8080 --node-port=30080 >/dev/null
expect_out "a requested nodePort is honoured" '80:30080/TCP' k get svc np2 --no-headers
expect_fail "the same nodePort again -> already allocated" \
  'spec.ports\[0\].nodePort: Invalid value: 30080: provided port is already allocated' \
  k create service nodeport np3 --tcp=80:8080 --node-port=30080
expect_fail "a nodePort outside the range -> 422" \
  'spec.ports\[0\].nodePort: Invalid value: 32000: provided port is not in the valid range. The range of valid ports is 30000-30999' \
  k create service nodeport np3 --tcp=80:8080 --node-port=32000

k create service clusterip hl --clusterip=None --tcp=80 >/dev/null
expect_out "headless: CLUSTER-IP None" '^hl +ClusterIP +None ' k get svc hl --no-headers
k create service externalname ext --external-name=example.com >/dev/null
expect_out "ExternalName: no cluster IP" '^ext +ExternalName +<none> ' k get svc ext --no-headers

k patch svc np2 -p '{"spec":{"type":"ClusterIP"}}' >/dev/null
expect_out "NodePort -> ClusterIP drops the node port" '^np2 +ClusterIP +10\.100\.0\.[0-9]+ +<none> +80/TCP' k get svc np2 --no-headers
check "... and releases it" k create service nodeport np3 --tcp=80:8080 --node-port=30080
k delete svc fixed >/dev/null
check "delete releases the IP: re-create with it" k create service clusterip fixed2 --clusterip=10.100.0.50 --tcp=80

# Restart: the allocations stay taken.
web_ip=$(ip_of web)
np_port=$(k get svc np -o 'jsonpath={.spec.ports[0].nodePort}')
kill "$RCD_PID"; wait "$RCD_PID" 2>/dev/null || true
start_rcd "$RCD_BIN" "${FLAGS[@]}"
expect_fail "after a restart, web's IP is still allocated" 'provided IP is already allocated' \
  k create service clusterip dup --clusterip="$web_ip" --tcp=80
expect_fail "after a restart, np's node port is still allocated" 'provided port is already allocated' \
  k create service nodeport dup --tcp=80 --node-port="$np_port"
for i in $(seq 1 20); do k create service clusterip "after$i" --tcp=80 >/dev/null; done
expect_out "no duplicate IP among all services after the restart" '^0$' \
  bash -c "$KUBECTL get svc -o 'jsonpath={range .items[*]}{.spec.clusterIP}{\"\\n\"}{end}' | grep -v '^None$' | grep . | sort | uniq -d | wc -l"
expect_out "no duplicate node port" '^0$' \
  bash -c "$KUBECTL get svc -o 'jsonpath={range .items[*]}{range .spec.ports[*]}{.nodePort}{\"\\n\"}{end}{end}' | grep . | sort | uniq -d | wc -l"

# Two rcd on one etcd, each with its own in-memory view: 2 x 25 parallel creates in a /26 (61
# addresses to hand out, so picks collide) give 50 distinct IPs and 50 reservation keys.
if [ -n "$ETCD_BIN" ]; then
  free_port() {
    local p
    while true; do
      p=$(shuf -i 20000-32000 -n 1)
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
  }
  client_port=$(free_port); peer_port=$(free_port)
  "$ETCD_BIN" --name e2e --data-dir "$E2E_WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "e2e=http://127.0.0.1:$peer_port" >"$E2E_WORK/etcd.log" 2>&1 &
  PIDS+=($!)
  check "etcd is up" wait_for 30 bash -c "ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$client_port endpoint health"
  APIS=()
  for m in a b; do
    "$RCD_BIN" --store "etcd://127.0.0.1:$client_port" --listen 127.0.0.1:0 --etcd-listen '' --identity "rcd-$m" \
      --metrics-listen "" --no-controllers --service-cluster-ip-range 10.101.0.0/26 \
      >"$E2E_WORK/rcd-$m.out" 2>"$E2E_WORK/rcd-$m.log" &
    PIDS+=($!)
    wait_for 30 grep -q "rcd ready" "$E2E_WORK/rcd-$m.out" || { echo "rcd-$m did not start"; cat "$E2E_WORK/rcd-$m.log"; exit 1; }
    APIS+=("$(sed -nE 's/.*api=([^ ]+).*/\1/p' "$E2E_WORK/rcd-$m.out")")
  done
  for i in $(seq 1 25); do
    for api in "${APIS[@]}"; do
      curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' \
        "$api/api/v1/namespaces/default/services" \
        -d "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"generateName\":\"par-\"},\"spec\":{\"ports\":[{\"port\":80}]}}" \
        >>"$E2E_WORK/codes" &
    done
  done
  wait_for 60 bash -c "[ \$(wc -l <'$E2E_WORK/codes') -eq 50 ]"
  expect_out "50 parallel creates through two rcd all succeed" '^50$' bash -c "grep -c '^201$' '$E2E_WORK/codes'"
  expect_out "... with 50 distinct IPs" '^50 50$' bash -c "echo \$(curl -s '${APIS[0]}/api/v1/namespaces/default/services' | grep -oE '\"clusterIP\":\"[^\"]+\"' | wc -l) \$(curl -s '${APIS[0]}/api/v1/namespaces/default/services' | grep -oE '\"clusterIP\":\"[^\"]+\"' | sort -u | wc -l)"
  expect_out "... and 50 reservation keys in etcd" '^50$' bash -c \
    "ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$client_port get /registry/ranges/serviceips/ --prefix --keys-only | grep -c ."
fi
finish
