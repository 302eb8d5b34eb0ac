#!/usr/bin/env bash
# The controllers end to end, with the stock kubectl against a real rcd on the embedded store:
# Deployment -> ReplicaSet -> Pods with events, rolling update bounds, rollout status/undo,
# scaling, self-healing, cascading and orphaning deletes, namespace deletion, hot reload of a
# controller file (good and broken edits), and `kubectl get controllers`.
# No node agent runs here: a fake kubelet marks pods Running/Ready through the status subresource.
# Usage: controllers_e2e.sh RCD_BINARY [KUBECTL]
source "$(dirname "$0")/lib.sh"
RCD_BIN=$1
KUBECTL=${2:-kubectl}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
k() { "$KUBECTL" --request-timeout=30s "$@"; }
CTRL_DIR="$E2E_WORK/controllers"
mkdir -p "$CTRL_DIR"

start_rcd "$RCD_BIN" --controllers "$CTRL_DIR" --controllers-poll-ms 100 --metrics-listen 127.0.0.1:0
echo "# rcd at $API, kubectl $("$KUBECTL" version --client 2>/dev/null | head -1)"

count_pods() { k get pods -n "${2:-default}" -l "$1" -o name 2>/dev/null | wc -l; }
pods_are() { [ "$(count_pods "$1" "${3:-default}")" -eq "$2" ]; }

# The fake kubelet: every pod without an IP becomes Running and Ready (status subresource).
fake_kubelet() {
  local n=10
  while true; do
    k get pods -A -o 'jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{""}{end}{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{" "}{.status.podIP}{"\n"}{end}' 2>/dev/null |
      while read -r ns name ip; do
        [ -n "$ip" ] && continue
        n=$(( (n % 250) + 1 ))
        now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
        curl -s -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' \
          "$API/api/v1/namespaces/$ns/pods/$name/status" \
          -d "{\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.0.$((RANDOM % 250 + 2))\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"}]}}"
      done
    sleep 0.2
  done
}

# ---- Deployment -> ReplicaSet -> Pods -----------------------------------------------------
cat >"$E2E_WORK/demo.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers:
      - {name: main, image: "busybox:1.36", command: ["sleep", "3600"]}
YAML
expect_out "apply a 3-replica Deployment" "deployment.apps/demo created" k apply -f "$E2E_WORK/demo.yaml"
check "3 pods appear" wait_for 20 pods_are app=demo 3
expect_out "exactly one ReplicaSet, named deployment-hash" "^demo-[a-z0-9]+$" \
  k get rs -l app=demo -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}'
rs=$(k get rs -l app=demo -o 'jsonpath={.items[0].metadata.name}')
hash=${rs#demo-}
expect_out "ReplicaSet is controlled by the Deployment" "^Deployment demo true true$" \
  k get rs "$rs" -o 'jsonpath={.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].controller} {.metadata.ownerReferences[0].blockOwnerDeletion}'
expect_out "pods carry the template labels and pod-template-hash" "^($hash ){2}$hash$" \
  k get pods -l app=demo -o 'jsonpath={.items[*].metadata.labels.pod-template-hash}'
expect_out "pods are controlled by the ReplicaSet" "^(ReplicaSet $rs true ){3}$" \
  k get pods -l app=demo -o 'jsonpath={range .items[*]}{.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].controller} {end}'
expect_out "pods are named after the ReplicaSet" "^$rs-[a-z0-9]{5}$" k get pods -l app=demo -o 'jsonpath={.items[0].metadata.name}'
expect_out "revision annotation" "^1$" k get rs "$rs" -o 'jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}'
wait_for 10 bash -c "[ \$($KUBECTL get events --field-selector reason=SuccessfulCreate -o name | wc -l) -ge 1 ]" || true
# In write order (resourceVersion, numerically).
events=$(k get events -o 'jsonpath={range .items[*]}{.metadata.resourceVersion}{" "}{.reason}{"\n"}{end}' | sort -n | cut -d' ' -f2)
expect_out "events: ScalingReplicaSet first" "^ScalingReplicaSet" head -1 <<<"$events"
expect_out "events: 3 SuccessfulCreate after it, each naming its pod" "^3 3$" \
  bash -c "$KUBECTL get events --field-selector reason=SuccessfulCreate -o 'jsonpath={range .items[*]}{.message}{\"\\n\"}{end}' | grep -cE '^Created pod: $rs-[a-z0-9]{5}\$' | sed 's/.*/& 3/'"
expect_out "SuccessfulCreate events are on the ReplicaSet, from the ReplicaSet controller" "^(ReplicaSet ReplicaSetController ){3}$" \
  k get events --field-selector reason=SuccessfulCreate -o 'jsonpath={range .items[*]}{.involvedObject.kind} {.source.component} {end}'
expect_out "ScalingReplicaSet names the ReplicaSet" "Scaled up replica set $rs to 3" \
  k get events --field-selector reason=ScalingReplicaSet -o 'jsonpath={.items[*].message}'

fake_kubelet &
KUBELET_PID=$!
check "deployment becomes available (3/3)" wait_for 30 bash -c "[ \"\$($KUBECTL get deploy demo -o 'jsonpath={.status.availableReplicas}')\" = 3 ]"
expect_out "rollout status completes" "successfully rolled out" k rollout status deploy/demo --timeout=60s

# ---- Rolling update within maxSurge/maxUnavailable ----------------------------------------
# replicas 3, maxSurge 25% -> 1 (rounded up), maxUnavailable 25% -> 0 (rounded down): at every
# step at most 4 pods exist and at least 3 are ready.
sample() {
  while true; do
    k get pods -l app=demo -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}' 2>/dev/null |
      awk '{t=0; r=0; for (i=1;i<=NF;i++) {t++; if ($i=="True") r++} print t, r}'
    sleep 0.05
  done
}
sample >"$E2E_WORK/samples" &
SAMPLER=$!
expect_out "set image starts a rollout" "image updated" k set image deploy/demo main=busybox:1.37
expect_out "rollout status completes after the update" "successfully rolled out" k rollout status deploy/demo --timeout=90s
kill $SAMPLER 2>/dev/null; wait $SAMPLER 2>/dev/null || true
expect_out "samples were taken during the rollout" "^[0-9]+$" bash -c "wc -l <'$E2E_WORK/samples'"
expect_out "never more than replicas+maxSurge=4 pods" "^ok$" \
  awk 'BEGIN{m=0} {if ($1>m) m=$1} END {print (m<=4 && m>0) ? "ok" : "max " m}' "$E2E_WORK/samples"
expect_out "never fewer than replicas-maxUnavailable=3 ready" "^ok$" \
  awk 'BEGIN{m=99} NF==2 {if ($2<m) m=$2} END {print (m>=3) ? "ok" : "min " m}' "$E2E_WORK/samples"
expect_out "two ReplicaSets now, old one scaled to 0" "^0 3$|^3 0$" \
  k get rs -l app=demo -o 'jsonpath={.items[0].spec.replicas} {.items[1].spec.replicas}'
expect_out "new pods run the new image" "^busybox:1.37 busybox:1.37 busybox:1.37$" \
  k get pods -l app=demo -o 'jsonpath={.items[*].spec.containers[0].image}'
expect_out "rollout history lists both revisions" "^ *2 " k rollout history deploy/demo
expect_out "rollout undo" "rolled back" k rollout undo deploy/demo
expect_out "rollout status completes after undo" "successfully rolled out" k rollout status deploy/demo --timeout=90s
expect_out "the old image is back" "^busybox:1.36$" k get deploy demo -o 'jsonpath={.spec.template.spec.containers[0].image}'
check "the original ReplicaSet runs the 3 pods again" wait_for 30 bash -c "[ \"\$($KUBECTL get rs $rs -o 'jsonpath={.status.readyReplicas}')\" = 3 ]"
expect_out "its revision moved to 3" "^3$" k get rs "$rs" -o 'jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}'

# ---- Scaling, self-healing -----------------------------------------------------------------
expect_out "scale deploy --replicas=6" "scaled" k scale deploy demo --replicas=6
check "6 pods" wait_for 30 pods_are app=demo 6
victim=$(k get pods -l app=demo -o 'jsonpath={.items[0].metadata.name}')
expect_out "delete a pod" "deleted" k delete pod "$victim" --wait=false
check "the pod is replaced (6 again, victim gone)" wait_for 30 bash -c "[ \$($KUBECTL get pods -l app=demo -o name | wc -l) -eq 6 ] && ! $KUBECTL get pod $victim >/dev/null 2>&1"
check "the deployment reports 6 available" wait_for 30 bash -c "[ \"\$($KUBECTL get deploy demo -o 'jsonpath={.status.availableReplicas}')\" = 6 ]"

# ---- Hot reload of the ReplicaSet controller -------------------------------------------------
# A user copy of the stdlib controller that also labels the pods it creates.
sed 's/labels: rs.spec.template.metadata.labels,/labels: (rs.spec.template.metadata with { labels: { "rc-reloaded": "v2" } }).labels,/' \
  "$REPO/stdlib/controllers/replicaset.rc" >"$E2E_WORK/replicaset-v2.rc"
check "the edited controller differs from the stdlib one" bash -c "! cmp -s '$E2E_WORK/replicaset-v2.rc' '$REPO/stdlib/controllers/replicaset.rc'"
k scale deploy demo --replicas=12 >/dev/null
cp "$E2E_WORK/replicaset-v2.rc" "$CTRL_DIR/replicaset.rc"
check "the reload is logged" wait_for 20 grep -q "controllers $CTRL_DIR/replicaset.rc: 1 controller(s) loaded" "$E2E_WORK/rcd.log"
check "12 pods, none created twice" wait_for 40 pods_are app=demo 12
sleep 1
expect_out "still exactly 12 pods after settling" "^12$" bash -c "$KUBECTL get pods -l app=demo -o name | wc -l"
k scale deploy demo --replicas=14 >/dev/null
check "later pods carry the new label" wait_for 30 bash -c "[ \$($KUBECTL get pods -l app=demo,rc-reloaded=v2 -o name | wc -l) -ge 2 ]"
check "14 pods" wait_for 30 pods_are app=demo 14
expect_out "kubectl get controllers shows the replaced controller" "^replicaset .*$CTRL_DIR/replicaset.rc" \
  bash -c "sleep 1.5; $KUBECTL get controllers --no-headers | grep '^replicaset'"
expect_out "its version counts the replacement" "^2$" k get controller replicaset -o 'jsonpath={.status.version}'
# Two more files come and go at once: the user's ReplicaSet controller stays in charge.
cp "$REPO/examples/controllers/configmap_stamp.rc" "$CTRL_DIR/stamp-a.rc"
sed 's/ConfigMapStampController/ConfigMapStampBController/' "$REPO/examples/controllers/configmap_stamp.rc" >"$CTRL_DIR/stamp-b.rc"
check "the extra controllers load" wait_for 20 bash -c "$KUBECTL get controller configmapstamp configmapstampb >/dev/null 2>&1"
k create configmap stamped --from-literal=a=1 --from-literal=b=2 >/dev/null
k label configmap stamped stamp=yes >/dev/null
check "an example controller works" wait_for 20 bash -c "[ \"\$($KUBECTL get cm stamped -o 'jsonpath={.metadata.annotations.example\.com/stamp}')\" = '2 keys' ]"
rm -f "$CTRL_DIR/stamp-a.rc" "$CTRL_DIR/stamp-b.rc"
check "deleting both stops both" wait_for 20 bash -c "! $KUBECTL get controller configmapstamp >/dev/null 2>&1 && ! $KUBECTL get controller configmapstampb >/dev/null 2>&1"
sleep 1
expect_out "the user's ReplicaSet controller is still the one running" "$CTRL_DIR/replicaset.rc" \
  k get controller replicaset -o 'jsonpath={.spec.origin}'
expect_out "rcd is still alive" "^ok$" bash -c "kill -0 $RCD_PID && echo ok"
# A broken edit: refused, the previous code keeps running.
printf 'controller ReplicaSetController {\n  primary ReplicaSet;\n  reconcile(rs: ReplicaSet) { let x = rs.spec.nope; }\n}\n' >"$CTRL_DIR/replicaset.rc"
check "the broken edit is refused with its position" wait_for 20 grep -q "replicaset.rc:3:.*error" "$E2E_WORK/rcd.log"
check "a FailedCompile event is reported" wait_for 20 bash -c "$KUBECTL get events -A --field-selector reason=FailedCompile -o name | grep -q ."
k scale deploy demo --replicas=15 >/dev/null
check "the old controller still works (15 pods, new label)" wait_for 30 bash -c "[ \$($KUBECTL get pods -l app=demo,rc-reloaded=v2 -o name | wc -l) -ge 3 ] && [ \$($KUBECTL get pods -l app=demo -o name | wc -l) -eq 15 ]"
rm -f "$CTRL_DIR/replicaset.rc"
check "removing the file brings the stdlib controller back" wait_for 20 bash -c "$KUBECTL get controller replicaset -o 'jsonpath={.spec.origin}' | grep -qx stdlib"

# ---- Endpoints ---------------------------------------------------------------------------------
for p in ep-1 ep-2; do k run "$p" --image=busybox:1.36 --labels=app=ep --port=8080 -- sleep 3600 >/dev/null; done
check "the pods get IPs from the fake kubelet" wait_for 20 bash -c "[ \$($KUBECTL get pods -l app=ep -o 'jsonpath={.items[*].status.podIP}' | wc -w) -eq 2 ]"
k create service clusterip ep --tcp=80:8080 >/dev/null
k label service ep app=ep --overwrite >/dev/null
k patch service ep --type=merge -p '{"spec":{"selector":{"app":"ep"}}}' >/dev/null
ips=$(k get pods -l app=ep -o 'jsonpath={range .items[*]}{.status.podIP}{"\n"}{end}' | sort | tr '\n' ' ')
check "Endpoints list both ready pods" wait_for 20 bash -c \
  "[ \"\$($KUBECTL get endpoints ep -o 'jsonpath={range .subsets[*].addresses[*]}{.ip}{\"\\n\"}{end}' | sort | tr '\\n' ' ')\" = '$ips' ]"
expect_out "with the resolved target port" "^8080$" k get endpoints ep -o 'jsonpath={.subsets[0].ports[0].port}'
expect_out "and targetRefs to the pods" "^Pod Pod$" k get endpoints ep -o 'jsonpath={.subsets[0].addresses[*].targetRef.kind}'
ip1=$(k get pod ep-1 -o 'jsonpath={.status.podIP}')
curl -s -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' "$API/api/v1/namespaces/default/pods/ep-1/status" \
  -d '{"status":{"conditions":[{"type":"Ready","status":"False"}]}}'
check "an unready pod moves to notReadyAddresses" wait_for 20 bash -c \
  "[ \"\$($KUBECTL get endpoints ep -o 'jsonpath={.subsets[0].notReadyAddresses[*].ip}')\" = '$ip1' ]"
expect_out "only the ready pod stays in addresses" "^$(k get pod ep-2 -o 'jsonpath={.status.podIP}')$" \
  k get endpoints ep -o 'jsonpath={.subsets[0].addresses[*].ip}'
curl -s -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' "$API/api/v1/namespaces/default/pods/ep-1/status" \
  -d '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}'
check "ready again: back in addresses" wait_for 20 bash -c "[ \$($KUBECTL get endpoints ep -o 'jsonpath={.subsets[0].addresses[*].ip}' | wc -w) -eq 2 ]"
k delete service ep >/dev/null
check "Endpoints go with their Service" wait_for 20 bash -c "! $KUBECTL get endpoints ep >/dev/null 2>&1"
k delete pod ep-1 ep-2 --wait=false >/dev/null

# ---- PersistentVolume binding ---------------------------------------------------------------
pv() {  # name size policy
  cat <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: $1}
spec:
  capacity: {storage: $2}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: $3
  storageClassName: standard
  hostPath: {path: /tmp/$1}
---
YAML
}
pvc() {  # name size
  cat <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $1}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  resources: {requests: {storage: $2}}
---
YAML
}
{ pv pv-small 1Gi Retain; pv pv-mid 5Gi Retain; pv pv-big 10Gi Delete; } | k apply -f - >/dev/null
check "volumes become Available" wait_for 20 bash -c "[ \"\$($KUBECTL get pv -o 'jsonpath={.items[*].status.phase}')\" = 'Available Available Available' ]"
pvc claim-a 2Gi | k apply -f - >/dev/null
check "a 2Gi claim binds" wait_for 20 bash -c "[ \"\$($KUBECTL get pvc claim-a -o 'jsonpath={.status.phase}')\" = Bound ]"
expect_out "to the smallest fitting volume (5Gi)" "^pv-mid$" k get pvc claim-a -o 'jsonpath={.spec.volumeName}'
expect_out "the volume points back at the claim and is Bound" "^default/claim-a Bound$" \
  k get pv pv-mid -o 'jsonpath={.spec.claimRef.namespace}/{.spec.claimRef.name} {.status.phase}'
pvc claim-b 6Gi | k apply -f - >/dev/null
check "a 6Gi claim gets the 10Gi volume" wait_for 20 bash -c "[ \"\$($KUBECTL get pvc claim-b -o 'jsonpath={.spec.volumeName} {.status.phase}')\" = 'pv-big Bound' ]"
pvc claim-c 50Gi | k apply -f - >/dev/null
sleep 1
expect_out "a claim nothing satisfies stays Pending" "^Pending$" k get pvc claim-c -o 'jsonpath={.status.phase}'
k delete pvc claim-a >/dev/null
check "Retain: deleting the claim releases its volume" wait_for 20 bash -c "[ \"\$($KUBECTL get pv pv-mid -o 'jsonpath={.status.phase}')\" = Released ]"
k delete pvc claim-b >/dev/null
check "Delete: deleting the claim deletes its volume" wait_for 20 bash -c "! $KUBECTL get pv pv-big >/dev/null 2>&1"
expect_out "the unused volume is still Available" "^Available$" k get pv pv-small -o 'jsonpath={.status.phase}'
k delete pvc claim-c >/dev/null; k delete pv pv-small pv-mid >/dev/null

# ---- Deletion: cascade and orphan ----------------------------------------------------------
expect_out "delete the deployment with --cascade=orphan" "deleted" k delete deploy demo --cascade=orphan
check "the deployment is gone" wait_for 20 bash -c "! $KUBECTL get deploy demo >/dev/null 2>&1"
sleep 1
expect_out "its ReplicaSets stay" "^2$" bash -c "$KUBECTL get rs -l app=demo -o name | wc -l"
expect_out "and so do the pods" "^15$" bash -c "$KUBECTL get pods -l app=demo -o name | wc -l"
expect_out "without an owner reference" "^$" k get rs -l app=demo -o 'jsonpath={.items[*].metadata.ownerReferences}'
sed 's/name: demo}/name: cascade}/; s/app: demo/app: cascade/g' "$E2E_WORK/demo.yaml" >"$E2E_WORK/cascade.yaml"
k apply -f "$E2E_WORK/cascade.yaml" >/dev/null
check "a second deployment gets its pods" wait_for 30 pods_are app=cascade 3
expect_out "delete it (background cascade)" "deleted" k delete deploy cascade
check "its ReplicaSet is garbage-collected" wait_for 30 bash -c "[ \$($KUBECTL get rs -l app=cascade -o name | wc -l) -eq 0 ]"
check "and its pods" wait_for 30 pods_are app=cascade 0

# ---- Namespace deletion ----------------------------------------------------------------------
k create ns doomed >/dev/null
sed 's/name: demo}/name: demo, namespace: doomed}/' "$E2E_WORK/demo.yaml" | k apply -f - >/dev/null
k create configmap settings -n doomed --from-literal=a=b >/dev/null
check "pods run in the namespace" wait_for 30 pods_are app=demo 3 doomed
expect_out "delete the namespace" "deleted" k delete ns doomed --wait=false
expect_out "it is Terminating (or already gone)" "Terminating|NotFound" bash -c "$KUBECTL get ns doomed 2>&1 || true"
check "everything in it and then the namespace disappear" wait_for 60 bash -c "! $KUBECTL get ns doomed >/dev/null 2>&1"
expect_out "nothing left in it" "No resources found" k get all,cm -n doomed

# ---- Metrics ------------------------------------------------------------------------------
metrics=$(sed -nE 's/.*controller manager metrics on (http[^ ]+).*/\1/p' "$E2E_WORK/rcd.log" | head -1)
expect_out "metrics: reconciles per controller" 'rc_controller_reconciles_total\{controller="ReplicaSetController"\} [1-9]' curl -s "$metrics"
expect_out "metrics: this rcd leads" 'rc_leader_election_master_status\{name="rc-controller-manager"\} 1' curl -s "$metrics"

kill $KUBELET_PID 2>/dev/null; wait $KUBELET_PID 2>/dev/null || true
finish
