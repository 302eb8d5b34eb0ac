#!/usr/bin/env bash
# kubectl, curl and etcdctl end-to-end against a real rcd on the embedded RocksDB store.
# Usage: kubectl_e2e.sh RCD_BINARY EXAMPLES_DIR [KUBECTL]
source "$(dirname "$0")/lib.sh"
RCD_BIN=$1
EXAMPLES=$2
KUBECTL=${3:-kubectl}
k() { "$KUBECTL" --request-timeout=30s "$@"; }

start_rcd "$RCD_BIN"
echo "# rcd at $API, etcd endpoint at $ETCD, kubectl $("$KUBECTL" version --client 2>/dev/null | head -1)"

# Namespaces that exist from the start.
expect_out "system namespaces exist" "kube-node-lease" k get ns
expect_out "kube-system and kube-public listed" "kube-public.*Active" k get ns kube-public

# apply (create), then re-apply with a changed image: the strategic-merge PATCH path.
expect_out "apply -f creates the deployment" "deployment.apps/web created" k apply -f "$EXAMPLES/deployment.yaml"
expect_out "apply -f created the service" "^web +ClusterIP" k get svc web
expect_out "defaults applied (strategy)" "^RollingUpdate$" k get deploy web -o 'jsonpath={.spec.strategy.type}'
sed 's/nginx:1.25/nginx:1.26/' "$EXAMPLES/deployment.yaml" >"$E2E_WORK/deployment-v2.yaml"
expect_out "re-apply with a new image is configured" "deployment.apps/web configured" k apply -f "$E2E_WORK/deployment-v2.yaml"
expect_out "image changed" "^nginx:1.26$" k get deploy web -o 'jsonpath={.spec.template.spec.containers[0].image}'
expect_out "other container kept" "^busybox:1.36$" k get deploy web -o 'jsonpath={.spec.template.spec.containers[1].image}'
expect_out "env kept in order" "^MODE LOG_LEVEL$" k get deploy web -o 'jsonpath={.spec.template.spec.containers[0].env[*].name}'
expect_out "generation bumped by the spec change" "^2$" k get deploy web -o 'jsonpath={.metadata.generation}'
expect_out "re-apply unchanged" "deployment.apps/web unchanged" k apply -f "$E2E_WORK/deployment-v2.yaml"
# Removing the sidecar from the manifest removes it from the object (three-way merge).
awk '/- name: sidecar/{skip=1} /^---/{skip=0} !skip' "$E2E_WORK/deployment-v2.yaml" >"$E2E_WORK/deployment-v3.yaml"
expect_out "apply removing a container" "configured" k apply -f "$E2E_WORK/deployment-v3.yaml"
expect_out "container removed" "^web$" k get deploy web -o 'jsonpath={.spec.template.spec.containers[*].name}'

# Listing across kinds and namespaces.
expect_out "get deploy,rs,pods -A" "deployment.apps/web" k get deploy,rs,pods -A
expect_out "get deploy shows READY/UP-TO-DATE columns" "NAME +READY +UP-TO-DATE +AVAILABLE +AGE" k get deploy

# Namespaces, pods, labels, annotations.
expect_out "create ns" "namespace/team-a created" k create ns team-a
expect_out "run a pod" "pod/p1 created" k run p1 --image=busybox:1.36 -n team-a -- sleep 3600
expect_out "get pods -o wide has the wide columns" "NAME +READY +STATUS +RESTARTS +AGE +IP +NODE" k get pods -n team-a -o wide
expect_out "pod row" "p1 +0/1 +Pending" k get pods -n team-a -o wide
expect_out "label" "pod/p1 labeled" k label pod p1 -n team-a tier=db
expect_out "label selector finds it" "^p1$" k get pods -n team-a -l 'tier in (db,cache)' -o 'jsonpath={.items[*].metadata.name}'
expect_out "negative selector excludes it" "No resources found" k get pods -n team-a -l 'tier!=db'
expect_out "annotate" "pod/p1 annotated?" k annotate pod p1 -n team-a note=hello
expect_out "annotation stored" "^hello$" k get pod p1 -n team-a -o 'jsonpath={.metadata.annotations.note}'
expect_out "field selector" "p1" k get pods -A --field-selector status.phase=Pending
expect_fail "unsupported field selector is a clear error" "field label not supported" k get pods --field-selector spec.bogus=x

# scale through the scale subresource.
expect_out "scale deploy --replicas=5" "deployment.apps/web scaled" k scale deploy web --replicas=5
expect_out "replicas now 5" "^5$" k get deploy web -o 'jsonpath={.spec.replicas}'

# get -w sees events.
"$KUBECTL" get pods -n team-a -w --output-watch-events >"$E2E_WORK/watch.out" 2>&1 &
watch_pid=$!
sleep 1.5
k run p2 --image=busybox:1.36 -n team-a -- sleep 1 >/dev/null
k delete pod p2 -n team-a --wait=false >/dev/null
for _ in $(seq 1 50); do grep -q "DELETED.*p2" "$E2E_WORK/watch.out" && break; sleep 0.1; done
kill "$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true
expect_out "get pods -w shows ADDED" "ADDED +p2" cat "$E2E_WORK/watch.out"
expect_out "get pods -w shows DELETED" "DELETED +p2" cat "$E2E_WORK/watch.out"

# Raw access.
expect_out "get --raw" '"kind":"Namespace"' k get --raw /api/v1/namespaces/default
expect_out "get --raw /readyz" "^ok$" k get --raw /readyz

# Optimistic concurrency: an update with a stale resourceVersion is refused with Conflict.
k get deploy web -o json >"$E2E_WORK/stale.json"
k label deploy web touched=yes >/dev/null
expect_fail "replace with a stale resourceVersion conflicts" "the object has been modified|Conflict" k replace -f "$E2E_WORK/stale.json"

# Watch over plain HTTP: HTTP/1.1 chunked and HTTP/1.0 close-delimited.
rv=$(k get pods -n team-a -o 'jsonpath={.metadata.resourceVersion}')
curl -sS -N -i --http1.1 --max-time 4 "$API/api/v1/pods?watch=true&resourceVersion=$rv" >"$E2E_WORK/curl11.out" 2>&1 &
c1=$!
curl -sS -N -i --http1.0 --max-time 4 "$API/api/v1/pods?watch=true&resourceVersion=$rv" >"$E2E_WORK/curl10.out" 2>&1 &
c2=$!
sleep 1
k run p3 --image=busybox:1.36 -n team-a -- sleep 1 >/dev/null
wait "$c1" "$c2" 2>/dev/null || true
expect_out "curl HTTP/1.1 watch is chunked" "[Tt]ransfer-[Ee]ncoding: chunked" cat "$E2E_WORK/curl11.out"
expect_out "curl HTTP/1.1 watch streams the event" '"type":"ADDED".*"name":"p3"' cat "$E2E_WORK/curl11.out"
expect_out "curl HTTP/1.0 watch answers HTTP/1.0" "^HTTP/1.0 200" cat "$E2E_WORK/curl10.out"
expect_out "curl HTTP/1.0 watch streams the event" '"type":"ADDED".*"name":"p3"' cat "$E2E_WORK/curl10.out"

# delete.
expect_out "delete deployment" 'deployment.apps "web" deleted' k delete deploy web
expect_fail "deleted deployment is gone" "NotFound|not found" k get deploy web

# etcdctl against the embedded store's gRPC endpoint.
if command -v etcdctl >/dev/null; then
  expect_out "etcdctl lists /registry keys" "^/registry/namespaces/team-a$" \
    env ETCDCTL_API=3 etcdctl --endpoints="$ETCD" get / --prefix --keys-only
  expect_out "etcdctl sees pods by key" "^/registry/pods/team-a/p1$" \
    env ETCDCTL_API=3 etcdctl --endpoints="$ETCD" get /registry/pods/ --prefix --keys-only
fi

finish
