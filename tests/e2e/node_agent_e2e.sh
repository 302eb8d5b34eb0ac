#!/usr/bin/env bash
# Real pods end to end (issue 5): rcd (scheduler, controllers, node IPAM) + rc-agent with real
# rc-pause sandboxes, the CNI bridge/host-local/loopback plugins and runc, driven by the stock
# kubectl. Each node's pod network lives in a network namespace this test creates (the agents
# run beside rcd and point CNI and their probes into it); the two node namespaces are joined by
# a veth pair and routed to each other's podCIDR. Nothing in the root namespace changes; every
# namespace, container, mount and process is removed at the end, also on failure.
# Usage: node_agent_e2e.sh RCD RC_AGENT [KUBECTL]   (as root)
source "$(dirname "$0")/lib.sh"
RCD_BIN=$1
AGENT_BIN=$2
KUBECTL=${3:-kubectl}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
k() { "$KUBECTL" --request-timeout=30s "$@"; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, runc)"; exit 0; }

source "$(dirname "$0")/agent_lib.sh"

# Node failure is noticed after 10 s without a heartbeat (agents renew their Lease every 2 s) and
# pods that do not tolerate it are evicted 2 s later (Kubernetes: 40 s and 300 s).
AGENT_FLAGS=(--node-lease-duration-seconds 8)
start_rcd "$RCD_BIN" --cluster-cidr 10.77.0.0/16 --metrics-listen "" --node-monitor-grace-period 10 \
  --node-monitor-period 500 --default-unreachable-toleration-seconds 2
bash "$REPO/scripts/build-busybox-image.sh" "$E2E_WORK/busybox.tar" >/dev/null

ip netns add "$N1"; ip netns add "$N2"
for ns in "$N1" "$N2"; do ip -n "$ns" link set lo up; ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1; done
ip link add "${TAG}a" netns "$N1" type veth peer name "${TAG}b" netns "$N2"
ip -n "$N1" addr add 192.168.250.1/24 dev "${TAG}a"; ip -n "$N1" link set "${TAG}a" up
ip -n "$N2" addr add 192.168.250.2/24 dev "${TAG}b"; ip -n "$N2" link set "${TAG}b" up

ready_count() { k get pods -l "$1" -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True; }

start_agent n1
wait_for 10 bash -c "[ \"\$($KUBECTL get node n1 -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]" || true
expect_out "node n1 registers Ready with a podCIDR from --cluster-cidr" '^True 10\.77\.[0-9]+\.0/24$' \
  bash -c "sleep 1; $KUBECTL get node n1 -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.spec.podCIDR}'"
CIDR1=$(k get node n1 -o jsonpath='{.spec.podCIDR}')
PREFIX1=${CIDR1%.0/24}.
expect_out "the node Lease in kube-node-lease is held by n1" '^n1$' \
  k get lease n1 -n kube-node-lease -o 'jsonpath={.spec.holderIdentity}'

# ---- A 3-replica Deployment of busybox httpd ------------------------------------------------
cat >"$E2E_WORK/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && echo serving $(hostname) && exec httpd -f -p 8080 -h /www"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
YAML
k apply -f "$E2E_WORK/web.yaml" >/dev/null
check "3 web pods Running and Ready" wait_for 60 bash -c "[ \$($KUBECTL get pods -l app=web -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}' | grep -c True) -eq 3 ]"
k get pods -o wide -l app=web > "$E2E_WORK/wide.txt"
expect_out "kubectl get pods -o wide shows IP and NODE" '^web-[a-z0-9]+-[a-z0-9]+ +1/1 +Running +0 +[0-9]+s +10\.77\.[0-9]+\.[0-9]+ +n1 ' cat "$E2E_WORK/wide.txt"
IPS=$(k get pods -l app=web -o 'jsonpath={range .items[*]}{.status.podIP}{"\n"}{end}')
expect_out "three distinct pod IPs" '^3$' bash -c "echo '$IPS' | sort -u | grep -c ."
expect_out "all inside n1's podCIDR $CIDR1" '^3$' bash -c "echo '$IPS' | grep -c '^${PREFIX1//./\\.}'"
PODS=($(k get pods -l app=web -o 'jsonpath={range .items[*]}{.metadata.name}{" "}{end}'))
IP1=$(k get pod "${PODS[1]}" -o jsonpath='{.status.podIP}')
NET0=$(sandbox_of "${PODS[0]}" n1)
expect_out "HTTP from ${PODS[0]}'s namespace to ${PODS[1]}'s IP is answered by it" "^${PODS[1]}\$" \
  nsenter --net="$NET0" timeout 5 busybox wget -qO- "http://$IP1:8080/"
EV=$(k get events -o 'jsonpath={range .items[*]}{.metadata.resourceVersion}{" "}{.reason}{" "}{.involvedObject.name}{" "}{.message}{"\n"}{end}' | sort -n)
P0=${PODS[0]}
chain=$(echo "$EV" | awk -v p="$P0" '($2=="ScalingReplicaSet") || ($3==p) || ($2=="SuccessfulCreate" && index($0, p))' | awk '{print $2}' | awk '!seen[$0]++' | tr '\n' ' ')
expect_out "events in order: ScalingReplicaSet SuccessfulCreate Scheduled Pulled Created Started" \
  '^ScalingReplicaSet SuccessfulCreate Scheduled Pulled Created Started' echo "$chain"
expect_out "Scheduled names the node" "Successfully assigned default/$P0 to n1" echo "$EV"

# ---- Restarts -------------------------------------------------------------------------------
CID=$(k get pod "$P0" -o jsonpath='{.status.containerStatuses[0].containerID}'); CID=${CID#runc://}
kill -9 "$(cat "${STATE[n1]}/runtime/containers/$CID/pid")"
check "killing the container's process restarts it (restartCount 1)" wait_for 30 bash -c "[ \"\$($KUBECTL get pod $P0 -o 'jsonpath={.status.containerStatuses[0].restartCount}')\" = 1 ]"
expect_out "lastState records the kill (exit 137)" '"exitCode":137' k get pod "$P0" -o 'jsonpath={.status.containerStatuses[0].lastState}'
check "and it is Ready again" wait_for 30 bash -c "[ \"\$($KUBECTL get pod $P0 -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"

# The pod's pause process dies (its PID namespace and containers with it): a new sandbox with a
# new IP, the container restarted in it, the old veth and IP released.
P2=${PODS[2]}
NET2=$(sandbox_of "$P2" n1)
IP2_OLD=$(k get pod "$P2" -o jsonpath='{.status.podIP}')
kill -9 "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pause_pid"])' "$(dirname "$(dirname "$NET2")")/sandbox.json")"
check "killing a pod's pause process re-creates its sandbox: restarted, Ready, a new IP" wait_for 30 bash -c "[ \"\$($KUBECTL get pod $P2 -o 'jsonpath={.status.containerStatuses[0].restartCount} {.status.conditions[?(@.type==\"Ready\")].status}')\" = '1 True' ] && [ \"\$($KUBECTL get pod $P2 -o 'jsonpath={.status.podIP}')\" != '$IP2_OLD' ]"
expect_out "with a SandboxChanged event" 'Pod sandbox changed, it will be killed and re-created' k get events --field-selector involvedObject.name="$P2",reason=SandboxChanged
expect_out "the old sandbox's IP allocation is released" '^released$' bash -c "[ -e '${STATE[n1]}/runtime/cni/ipam/rc/$IP2_OLD' ] && echo held || echo released"
expect_out "and its veth is gone: one per running web pod" '^3$' bash -c "ip -n $N1 -o link show type veth | grep -v '${TAG}[ab]' | grep -c ."
IP2=$(k get pod "$P2" -o jsonpath='{.status.podIP}')
expect_out "and the new IP serves HTTP" "^$P2\$" nsenter --net="$NET0" timeout 5 busybox wget -qO- "http://$IP2:8080/"

k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; exec sleep 1000"]
    livenessProbe: {exec: {command: ["test", "-f", "/tmp/healthy"]}, periodSeconds: 1, failureThreshold: 2}
YAML
check "a failing liveness probe restarts the container" wait_for 45 bash -c "[ \"\$($KUBECTL get pod live -o 'jsonpath={.status.containerStatuses[0].restartCount}')\" -ge 1 ]"
expect_out "with Unhealthy and Killing events" 'Liveness probe failed.*|Killing' \
  bash -c "$KUBECTL get events --field-selector involvedObject.name=live -o 'jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}' | grep -E 'Unhealthy|Killing' | sort -u | tr '\n' '|'"
expect_out "Killing says why" 'failed liveness probe, will be restarted' k get events --field-selector involvedObject.name=live,reason=Killing

k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: gate}
spec:
  selector: {app: gate}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: gate, labels: {app: gate}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 6; touch /tmp/ready; exec sleep 1000"]
    readinessProbe: {exec: {command: ["test", "-f", "/tmp/ready"]}, periodSeconds: 1}
YAML
check "the readiness-gated pod runs" wait_for 30 bash -c "[ \"\$($KUBECTL get pod gate -o 'jsonpath={.status.phase}')\" = Running ]"
expect_out "before its probe passes it is not Ready" '^False$' k get pod gate -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'
check "... and its address is in notReadyAddresses only" wait_for 10 bash -c "[ -n \"\$($KUBECTL get endpoints gate -o 'jsonpath={.subsets[0].notReadyAddresses[0].ip}')\" ] && [ -z \"\$($KUBECTL get endpoints gate -o 'jsonpath={.subsets[0].addresses[0].ip}')\" ]"
check "once it passes the pod is Ready" wait_for 30 bash -c "[ \"\$($KUBECTL get pod gate -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
GATE_IP=$(k get pod gate -o jsonpath='{.status.podIP}')
check "... and the Endpoints list it as ready" wait_for 10 bash -c "[ \"\$($KUBECTL get endpoints gate -o 'jsonpath={.subsets[0].addresses[0].ip}')\" = $GATE_IP ]"

# ---- Logs -----------------------------------------------------------------------------------
k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: counter}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.3; done"]
YAML
check "counter runs" wait_for 30 bash -c "$KUBECTL logs counter 2>/dev/null | grep -q 'line 2'"
expect_out "kubectl logs shows the container's output" '^line 0$' bash -c "$KUBECTL logs counter | head -1"
expect_out "kubectl logs --tail 1 shows one line" '^1$' bash -c "$KUBECTL logs counter --tail 1 | wc -l"
expect_out "kubectl logs of web shows httpd's banner" "^serving ${PODS[1]}\$" k logs "${PODS[1]}"
timeout 3 "$KUBECTL" logs -f counter >"$E2E_WORK/follow.txt" 2>&1 || true
before=$(k logs counter | wc -l)
expect_out "kubectl logs -f follows (lines keep coming for 3 s)" '^ok$' bash -c "[ \$(wc -l <'$E2E_WORK/follow.txt') -ge 8 ] && tail -1 '$E2E_WORK/follow.txt' | grep -q '^line' && echo ok"
GATE_CIP=$(k get svc gate -o jsonpath='{.spec.clusterIP}')
k run envcheck --image=busybox --image-pull-policy=IfNotPresent --restart=Never -- sh -c 'echo "$GATE_SERVICE_HOST $GATE_SERVICE_PORT $GATE_PORT"; exec sleep 1000' >/dev/null
check "envcheck runs" wait_for 30 bash -c "$KUBECTL logs envcheck 2>/dev/null | grep -q ."
expect_out "containers get their namespace's Service variables (GATE_SERVICE_HOST...)" "^$GATE_CIP 80 tcp://$GATE_CIP:80\$" k logs envcheck
k delete pod envcheck --grace-period=1 --wait=false >/dev/null
k run blanks --image=busybox --image-pull-policy=IfNotPresent --restart=Never -- sh -c "printf 'a\\n\\nb\\n'; exec sleep 1000" >/dev/null
check "blanks runs" wait_for 30 bash -c "[ \"\$($KUBECTL get pod blanks -o 'jsonpath={.status.phase}')\" = Running ]"
expect_out "kubectl logs -f relays the bytes unchanged (a blank line stays)" '^a\|\|b$' bash -c "timeout 3 $KUBECTL logs -f blanks | paste -sd'|'"
k delete pod blanks --grace-period=1 --wait=false >/dev/null
expect_out "kubectl logs --previous of the restarted web pod" "^serving $P0\$" k logs "$P0" --previous

# ---- Init containers and restart policies ---------------------------------------------------
k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - {name: first, image: busybox, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "sleep 1; echo first done"]}
  - {name: second, image: busybox, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "echo second done"]}
  containers:
  - {name: main, image: busybox, imagePullPolicy: IfNotPresent, command: ["sleep", "1000"]}
---
apiVersion: v1
kind: Pod
metadata: {name: never}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "exit 3"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: onfailure}
spec:
  restartPolicy: OnFailure
  containers: [{name: c, image: busybox, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "exit 1"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: onfailure-ok}
spec:
  restartPolicy: OnFailure
  containers: [{name: c, image: busybox, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "exit 0"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: nocmd}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, imagePullPolicy: IfNotPresent, command: ["/no/such/cmd"]}]
YAML
check "init containers run to completion, in order, before the main container" wait_for 30 bash -c "[ \"\$($KUBECTL get pod init -o 'jsonpath={.status.phase}')\" = Running ]"
expect_out "both init containers Completed" '^Completed Completed$' k get pod init -o 'jsonpath={.status.initContainerStatuses[*].state.terminated.reason}'
expect_out "the main container started after the last init container finished" '^ordered$' bash -c "
  fin=\$($KUBECTL get pod init -o 'jsonpath={.status.initContainerStatuses[1].state.terminated.finishedAt}')
  fst=\$($KUBECTL get pod init -o 'jsonpath={.status.initContainerStatuses[0].state.terminated.finishedAt}')
  st=\$($KUBECTL get pod init -o 'jsonpath={.status.containerStatuses[0].state.running.startedAt}')
  [[ ! \$st < \$fin ]] && [[ ! \$fin < \$fst ]] && echo ordered"
check "restartPolicy Never: exit 3 -> phase Failed, no restart" wait_for 30 bash -c "[ \"\$($KUBECTL get pod never -o 'jsonpath={.status.phase} {.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].restartCount}')\" = 'Failed 3 0' ]"
check "restartPolicy OnFailure: exit 0 -> Succeeded" wait_for 30 bash -c "[ \"\$($KUBECTL get pod onfailure-ok -o 'jsonpath={.status.phase} {.status.containerStatuses[0].restartCount}')\" = 'Succeeded 0' ]"
check "restartPolicy OnFailure: exit 1 -> restarted, then CrashLoopBackOff" wait_for 40 bash -c "[ \"\$($KUBECTL get pod onfailure -o 'jsonpath={.status.containerStatuses[0].state.waiting.reason}')\" = CrashLoopBackOff ] && [ \$($KUBECTL get pod onfailure -o 'jsonpath={.status.containerStatuses[0].restartCount}') -ge 1 ]"
expect_out "kubectl shows CrashLoopBackOff" 'onfailure +0/1 +CrashLoopBackOff' k get pod onfailure
expect_out "with a BackOff event" 'Back-off restarting failed container c in pod onfailure' k get events --field-selector involvedObject.name=onfailure,reason=BackOff
check "a command runc cannot start: StartError, exit 128, and Never makes the pod Failed" wait_for 30 bash -c "[ \"\$($KUBECTL get pod nocmd -o 'jsonpath={.status.phase} {.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}')\" = 'Failed StartError 128' ]"
k delete pod init never onfailure onfailure-ok nocmd --grace-period=1 --wait=false >/dev/null

# ---- Static pods --------------------------------------------------------------------------
cat >"$E2E_WORK/manifests-n1/static-web.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: static-web, labels: {app: static}}
spec:
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo static up; exec sleep 1000"]
YAML
check "a manifest in --pod-manifest-path runs as pod static-web-n1 with a mirror in the API" \
  wait_for 30 bash -c "[ \"\$($KUBECTL get pod static-web-n1 -o 'jsonpath={.status.phase}')\" = Running ]"
expect_out "the mirror pod is marked and owned by the Node" '^file .+ Node$' \
  k get pod static-web-n1 -o 'jsonpath={.metadata.annotations.kubernetes\.io/config\.source} {.metadata.annotations.kubernetes\.io/config\.mirror} {.metadata.ownerReferences[0].kind}'
expect_out "kubectl logs reads the static pod's container" '^static up$' k logs static-web-n1
SCID=$(k get pod static-web-n1 -o jsonpath='{.status.containerStatuses[0].containerID}')
k delete pod static-web-n1 --wait=false >/dev/null
check "deleting the mirror through the API only recreates the mirror" wait_for 30 bash -c "[ \"\$($KUBECTL get pod static-web-n1 -o 'jsonpath={.status.containerStatuses[0].containerID}' 2>/dev/null)\" = '$SCID' ] && [ -z \"\$($KUBECTL get pod static-web-n1 -o 'jsonpath={.metadata.deletionTimestamp}')\" ]"
rm "$E2E_WORK/manifests-n1/static-web.yaml"
check "removing the manifest stops the pod and deletes its mirror" wait_for 30 bash -c "! $KUBECTL get pod static-web-n1 >/dev/null 2>&1"
expect_out "its container process is gone" '^gone$' bash -c "kill -0 \$(cat ${STATE[n1]}/runtime/containers/${SCID#runc://}/pid 2>/dev/null) 2>/dev/null && echo alive || echo gone"

# ---- Images ---------------------------------------------------------------------------------
k run noimage --image=example.com/none:1.0 --restart=Never >/dev/null
check "a missing image gives ErrImagePull/ImagePullBackOff" wait_for 20 bash -c "$KUBECTL get pod noimage -o 'jsonpath={.status.containerStatuses[0].state.waiting.reason}' | grep -Eq 'ErrImagePull|ImagePullBackOff'"
expect_out "with a message that says what to do" 'rc-agent images import' k get pod noimage -o 'jsonpath={.status.containerStatuses[0].state.waiting.message}'
k delete pod noimage --wait=false >/dev/null

# ---- Scheduling failure ----------------------------------------------------------------------
k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: picky}
spec:
  nodeSelector: {disk: ssd}
  containers: [{name: c, image: busybox}]
YAML
check "a pod no node fits gets FailedScheduling with the reasons" wait_for 20 bash -c "$KUBECTL get events --field-selector involvedObject.name=picky,reason=FailedScheduling -o 'jsonpath={.items[*].message}' | grep -q \"0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector\""
expect_out "and stays Pending" '^Pending$' k get pod picky -o 'jsonpath={.status.phase}'
k delete pod picky --wait=false >/dev/null

# ---- hostPort ---------------------------------------------------------------------------------
# The CNI portmap plugin publishes containerPort 8080 on n1's port 18081 (rules in n1's network
# namespace); an outside client in n2's namespace reaches it at n1's address.
k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: hostport}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{containerPort: 8080, hostPort: 18081}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
YAML
check "the hostPort pod is Ready" wait_for 30 bash -c "[ \"\$($KUBECTL get pod hostport -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
expect_out "hostPort 18081 answers on the node's address from another namespace" '^published$' \
  ip netns exec "$N2" timeout 5 busybox wget -qO- http://192.168.250.1:18081/
expect_out "the DNAT rule for it is in n1's namespace" '^[1-9]' bash -c "ip netns exec '$N1' iptables -t nat -S | grep -c -- '--dport 18081'"
expect_out "and not in the root namespace" '^0$' bash -c "iptables -t nat -S 2>/dev/null | grep -c -- '--dport 18081' || true"
k delete pod hostport --grace-period=1 >/dev/null
check "deleting the pod removes its DNAT rule" wait_for 15 bash -c "[ \$(ip netns exec '$N1' iptables -t nat -S | grep -c -- '--dport 18081') -eq 0 ]"

# ---- Agent restart: containers are adopted, not restarted -----------------------------------
pids_before=$(for p in "${PODS[@]}"; do c=$(k get pod "$p" -o jsonpath='{.status.containerStatuses[0].containerID}'); cat "${STATE[n1]}/runtime/containers/${c#runc://}/pid"; echo; done | sort | tr '\n' ' ')
restarts_before=$(k get pods -l app=web -o 'jsonpath={range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}')
kill -9 "${AGENT_PID[n1]}"; wait "${AGENT_PID[n1]}" 2>/dev/null || true
: >"$E2E_WORK/ready-samples.txt"
( for _ in $(seq 1 25); do ready_count app=web >>"$E2E_WORK/ready-samples.txt" 2>/dev/null; sleep 0.2; done ) &
sampler=$!
"$AGENT_BIN" --server "$API" --node-name n1 --state-dir "${STATE[n1]}" --node-netns "/run/netns/$N1" \
  --node-ip 127.0.0.1 --address 127.0.0.1 --port 0 --healthz-port 0 --pod-manifest-path "$E2E_WORK/manifests-n1" \
  "${AGENT_FLAGS[@]}" \
  >"$E2E_WORK/agent-n1.out" 2>>"$E2E_WORK/agent-n1.log" &
AGENT_PID[n1]=$!
wait_for 30 grep -q "rc-agent ready" "$E2E_WORK/agent-n1.out"
wait "$sampler" || true
sleep 2
pids_after=$(for p in "${PODS[@]}"; do c=$(k get pod "$p" -o jsonpath='{.status.containerStatuses[0].containerID}'); cat "${STATE[n1]}/runtime/containers/${c#runc://}/pid"; echo; done | sort | tr '\n' ' ')
expect_out "after SIGKILL + restart of rc-agent the container PIDs are unchanged ($pids_before)" '^same$' bash -c "[ '$pids_before' = '$pids_after' ] && echo same || echo '$pids_after'"
expect_out "no restart counted" "^${restarts_before}\$" k get pods -l app=web -o 'jsonpath={range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}'
expect_out "Ready never dropped while the agent was away and back" '^3$' bash -c "sort -u '$E2E_WORK/ready-samples.txt' | tr -d '\n'"

# ---- Two nodes ------------------------------------------------------------------------------
start_agent n2
check "n2 registers Ready" wait_for 20 bash -c "[ \"\$($KUBECTL get node n2 -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = True ] && [ -n \"\$($KUBECTL get node n2 -o 'jsonpath={.spec.podCIDR}')\" ]"
CIDR2=$(k get node n2 -o jsonpath='{.spec.podCIDR}')
ip -n "$N1" route add "$CIDR2" via 192.168.250.2
ip -n "$N2" route add "$CIDR1" via 192.168.250.1
k scale deploy web --replicas=6 >/dev/null
check "scaled to 6: the new pods go to the empty node n2" wait_for 60 bash -c "[ \$($KUBECTL get pods -l app=web -o wide --no-headers | awk '\$7==\"n2\" && \$2==\"1/1\"' | wc -l) -eq 3 ]"
P_N2=$(k get pods -l app=web -o wide --no-headers | awk '$7=="n2"{print $1; exit}')
IP_N2=$(k get pod "$P_N2" -o jsonpath='{.status.podIP}')
expect_out "a pod on n1 reaches a pod on n2 by pod IP ($IP_N2)" "^$P_N2\$" nsenter --net="$NET0" timeout 5 busybox wget -qO- "http://$IP_N2:8080/"
NET_N2=$(sandbox_of "$P_N2" n2)
expect_out "and back (n2 -> n1, $IP1)" "^${PODS[1]}\$" nsenter --net="$NET_N2" timeout 5 busybox wget -qO- "http://$IP1:8080/"

k cordon n2 >/dev/null
expect_out "cordon marks n2 SchedulingDisabled" 'Ready,SchedulingDisabled' k get node n2
k scale deploy web --replicas=8 >/dev/null
check "new pods avoid the cordoned node" wait_for 60 bash -c "[ \$($KUBECTL get pods -l app=web -o wide --no-headers | awk '\$3==\"Running\"' | wc -l) -eq 8 ]"
expect_out "n2 still has 3" '^3$' bash -c "$KUBECTL get pods -l app=web -o wide --no-headers | awk '\$7==\"n2\"' | wc -l"
k uncordon n2 >/dev/null

# A DaemonSet pod on n1 (no DaemonSet controller needed: drain only looks at the owner).
k apply -f - >/dev/null <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec: {containers: [{name: c, image: busybox}]}
YAML
DS_UID=$(k get ds ds -o jsonpath='{.metadata.uid}')
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: ds-n1
  labels: {app: ds}
  ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: ds, uid: $DS_UID, controller: true}]
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: busybox, imagePullPolicy: IfNotPresent, command: ["sleep", "1000"]}]
YAML
check "the DaemonSet pod runs on n1" wait_for 30 bash -c "[ \"\$($KUBECTL get pod ds-n1 -o 'jsonpath={.status.phase}')\" = Running ]"
k delete pod live gate counter --grace-period=1 >/dev/null 2>&1 || true
expect_out "kubectl drain n1 --ignore-daemonsets evicts the web pods" 'node/n1 drained' \
  "$KUBECTL" drain n1 --ignore-daemonsets --timeout=90s
expect_out "drain skipped the DaemonSet pod" '^Running$' k get pod ds-n1 -o 'jsonpath={.status.phase}'
check "the evicted pods were recreated on n2: 8 Ready there" wait_for 60 bash -c "[ \$($KUBECTL get pods -l app=web -o wide --no-headers | awk '\$7==\"n2\" && \$2==\"1/1\"' | wc -l) -eq 8 ]"
expect_out "no web pod is left on n1" '^0$' bash -c "$KUBECTL get pods -l app=web -o wide --no-headers | awk '\$7==\"n1\"' | wc -l"
k uncordon n1 >/dev/null

# ---- A node that stops heartbeating -------------------------------------------------------------
# n2's agent dies (its containers keep running): the node goes NotReady and is tainted
# unreachable, its pods are evicted and recreated on n1; a new agent on n2 finishes them off.
kill -9 "${AGENT_PID[n2]}"; wait "${AGENT_PID[n2]}" 2>/dev/null || true
check "a node whose agent died is NotReady (Ready=Unknown) after the grace period" wait_for 30 bash -c "[ \"\$($KUBECTL get node n2 -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = Unknown ]"
expect_out "kubectl shows it NotReady" '^n2 +NotReady ' k get node n2 --no-headers
expect_out "and it is tainted unreachable (NoSchedule, NoExecute)" 'node.kubernetes.io/unreachable:NoSchedule node.kubernetes.io/unreachable:NoExecute' \
  k get node n2 -o 'jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}'
check "its pods are evicted and 8 web pods run Ready on n1" wait_for 60 bash -c "[ \$($KUBECTL get pods -l app=web -o wide --no-headers | awk '\$7==\"n1\" && \$2==\"1/1\"' | wc -l) -eq 8 ]"
expect_out "with TaintManagerEviction events" 'Marking for deletion Pod default/web-' k get events --field-selector reason=TaintManagerEviction
start_agent n2
check "a new agent on n2: Ready again, the taints gone, the evicted pods finished" wait_for 60 bash -c "[ \"\$($KUBECTL get node n2 -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}{.spec.taints}')\" = True ] && [ \$($KUBECTL get pods -l app=web --no-headers | wc -l) -eq 8 ]"

# ---- Deletion releases everything ----------------------------------------------------------
k delete pod ds-n1 --grace-period=1 >/dev/null
k delete deploy web >/dev/null
check "deleting the Deployment removes every pod" wait_for 60 bash -c "[ -z \"\$($KUBECTL get pods -o name)\" ]"
expect_out "no container process is left" '^0$' bash -c "for f in ${STATE[n1]}/runtime/containers/*/pid ${STATE[n2]}/runtime/containers/*/pid; do [ -f \$f ] && kill -0 \$(cat \$f) 2>/dev/null && echo alive; done | wc -l"
expect_out "no veth is left in either node" '^0$' bash -c "(ip -n $N1 -o link show type veth; ip -n $N2 -o link show type veth) | grep -v '${TAG}[ab]' | wc -l"
expect_out "every IP allocation is released" '^0$' bash -c "ls ${STATE[n1]}/runtime/cni/ipam/rc ${STATE[n2]}/runtime/cni/ipam/rc 2>/dev/null | grep -c '^10\.77\.' || true"
finish
