#!/usr/bin/env bash
# The API server's pod subresources and node IPAM, with curl and the stock kubectl against a real
# rcd (no node agent): pods/binding (201, 409 when bound), pods/eviction (graceful delete),
# discovery of pods/binding|eviction|log, and spec.podCIDR assignment from --cluster-cidr.
# Usage: pod_subresources_e2e.sh RCD_BINARY [KUBECTL]
source "$(dirname "$0")/lib.sh"
RCD_BIN=$1
KUBECTL=${2:-kubectl}
k() { "$KUBECTL" --request-timeout=30s "$@"; }
start_rcd "$RCD_BIN" --cluster-cidr 10.50.0.0/22 --node-cidr-mask-size 24 --metrics-listen "" --no-scheduler

post() { curl -s -o "$E2E_WORK/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$API$1" -d "$2"; }

k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  containers: [{name: c, image: busybox}]
YAML
for n in n1 n2 n3 n4 n5; do
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$API/api/v1/nodes" \
    -d "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$n\"}}"
done

expect_out "discovery lists pods/binding, pods/eviction (policy/v1), pods/log" \
  'pods/binding.*pods/eviction.*"group":"policy","version":"v1","kind":"Eviction".*pods/log' curl -s "$API/api/v1"
BIND='{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p1"},"target":{"apiVersion":"v1","kind":"Node","name":"n1"}}'
expect_out "binding a pending pod -> 201" '^201$' post /api/v1/namespaces/default/pods/p1/binding "$BIND"
expect_out "the pod is on n1 with PodScheduled=True" '^n1 True$' \
  k get pod p1 -o 'jsonpath={.spec.nodeName} {.status.conditions[?(@.type=="PodScheduled")].status}'
expect_out "binding it again -> 409" '^409$' post /api/v1/namespaces/default/pods/p1/binding "${BIND/n1/n2}"
expect_out "the 409 says where it is" 'already assigned to node \\"n1\\"' cat "$E2E_WORK/body"
expect_out "a binding without target -> 422" '^422$' post /api/v1/namespaces/default/pods/p1/binding '{"kind":"Binding","target":{}}'
expect_out "binding a missing pod -> 404" '^404$' post /api/v1/namespaces/default/pods/nope/binding "$BIND"
expect_out "GET on binding -> 405" '^405$' curl -s -o /dev/null -w '%{http_code}' "$API/api/v1/namespaces/default/pods/p1/binding"

EVICT='{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p1","namespace":"default"}}'
expect_out "evicting a bound pod -> 201" '^201$' post /api/v1/namespaces/default/pods/p1/eviction "$EVICT"
expect_out "the evicted pod is terminating with its grace period (30 s)" '^30$' \
  k get pod p1 -o 'jsonpath={.metadata.deletionGracePeriodSeconds}'
k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: p2}
spec:
  containers: [{name: c, image: busybox}]
YAML
expect_out "evicting an unbound pod deletes it at once" '^201$' post /api/v1/namespaces/default/pods/p2/eviction \
  '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p2"}}'
expect_fail "p2 is gone" 'NotFound' k get pod p2
expect_out "eviction with a wrong name -> 400" '^400$' post /api/v1/namespaces/default/pods/p1/eviction \
  '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"other"}}'
expect_out "pods/log of a pod on a node without an address -> 400 with the reason" 'does not report an InternalIP' \
  curl -s "$API/api/v1/namespaces/default/pods/p1/log"
expect_out "pods/log of an unknown container -> 400" 'container nope is not valid for pod p1' \
  curl -s "$API/api/v1/namespaces/default/pods/p1/log?container=nope"

# Node IPAM: 10.50.0.0/22 has four /24 blocks for five nodes.
podcidrs() { k get nodes -o 'jsonpath={range .items[*]}{.spec.podCIDR}{"\n"}{end}' | sort | grep -c .; }
check "four of five nodes get a podCIDR" wait_for 10 bash -c "[ \$($KUBECTL get nodes -o 'jsonpath={range .items[*]}{.spec.podCIDR}{\"\\n\"}{end}' | grep -c .) -eq 4 ]"
expect_out "the blocks are distinct /24s of the range" '^4$' bash -c "$KUBECTL get nodes -o 'jsonpath={range .items[*]}{.spec.podCIDR}{\"\\n\"}{end}' | grep -E '^10\.50\.[0-3]\.0/24$' | sort -u | wc -l"
check "the fifth gets a CIDRNotAvailable event" wait_for 10 bash -c "$KUBECTL get events -A | grep -q CIDRNotAvailable"
victim=$(k get nodes -o 'jsonpath={range .items[?(@.spec.podCIDR)]}{.metadata.name}{"\n"}{end}' | head -1)
freed=$(k get node "$victim" -o 'jsonpath={.spec.podCIDR}')
k delete node "$victim" >/dev/null
k delete node n5 >/dev/null 2>&1 || true
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$API/api/v1/nodes" \
  -d '{"apiVersion":"v1","kind":"Node","metadata":{"name":"n6"}}'
check "a new node reuses the freed block $freed" wait_for 10 bash -c "[ \"\$($KUBECTL get node n6 -o 'jsonpath={.spec.podCIDR}')\" = '$freed' ]"
finish
