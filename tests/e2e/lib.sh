# Shared helpers for the end-to-end tests: start a real rcd on fresh ports and a temp data dir,
# point kubectl at it, count checks, and clean up (also on failure).
set -euo pipefail

E2E_PASS=0
E2E_FAIL=0
E2E_WORK=$(mktemp -d /tmp/rc-e2e.XXXXXX)
RCD_PID=""

e2e_cleanup() {
  if [ -n "$RCD_PID" ] && kill -0 "$RCD_PID" 2>/dev/null; then
    kill "$RCD_PID" 2>/dev/null || true
    wait "$RCD_PID" 2>/dev/null || true
  fi
  # Background helpers started by the test (watchers): stop only our own children.
  jobs -p | xargs -r kill 2>/dev/null || true
  rm -rf "$E2E_WORK"
}
trap e2e_cleanup EXIT

# start_rcd BINARY [extra flags...]: sets API (http://host:port), ETCD (host:port), KUBECONFIG.
start_rcd() {
  local bin=$1; shift
  "$bin" --data-dir "$E2E_WORK/data" --listen 127.0.0.1:0 --etcd-listen 127.0.0.1:0 "$@" \
    >"$E2E_WORK/rcd.out" 2>"$E2E_WORK/rcd.log" &
  RCD_PID=$!
  for _ in $(seq 1 200); do
    if grep -q "rcd ready" "$E2E_WORK/rcd.out" 2>/dev/null; then break; fi
    if ! kill -0 "$RCD_PID" 2>/dev/null; then echo "rcd exited:"; cat "$E2E_WORK/rcd.log"; exit 1; fi
    sleep 0.1
  done
  local line
  line=$(grep "rcd ready" "$E2E_WORK/rcd.out") || { echo "rcd did not become ready"; cat "$E2E_WORK/rcd.log"; exit 1; }
  API=$(echo "$line" | sed -E 's/.*api=([^ ]+).*/\1/')
  ETCD=$(echo "$line" | sed -E 's/.*etcd=([^ ]+).*/\1/')
  export HOME="$E2E_WORK/home"
  mkdir -p "$HOME"
  export KUBECONFIG="$E2E_WORK/kubeconfig"
  cat >"$KUBECONFIG" <<KCFG
apiVersion: v1
kind: Config
clusters:
- cluster: {server: "$API"}
  name: rc
contexts:
- context: {cluster: rc, user: rc}
  name: rc
current-context: rc
users:
- name: rc
  user: {}
KCFG
}

# wait_for SECONDS command...: retries the command (quietly, every 0.1 s) until it succeeds;
# fails after SECONDS.
wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}

# check "description" command...: runs the command, counts pass/fail, shows output on failure.
check() {
  local desc=$1; shift
  local out
  if out=$("$@" 2>&1); then
    E2E_PASS=$((E2E_PASS + 1)); echo "ok   - $desc"
  else
    E2E_FAIL=$((E2E_FAIL + 1)); echo "FAIL - $desc"; echo "$out" | sed 's/^/       /'
  fi
}

# expect_out "description" "regex" command...: the command succeeds and its output matches.
expect_out() {
  local desc=$1 pattern=$2; shift 2
  local out
  if out=$("$@" 2>&1) && grep -Eq -- "$pattern" <<<"$out"; then
    E2E_PASS=$((E2E_PASS + 1)); echo "ok   - $desc"
  else
    E2E_FAIL=$((E2E_FAIL + 1)); echo "FAIL - $desc (wanted /$pattern/)"; echo "$out" | sed 's/^/       /'
  fi
}

# expect_fail "description" "regex" command...: the command fails and its output matches.
expect_fail() {
  local desc=$1 pattern=$2; shift 2
  local out
  if ! out=$("$@" 2>&1) && grep -Eq -- "$pattern" <<<"$out"; then
    E2E_PASS=$((E2E_PASS + 1)); echo "ok   - $desc"
  else
    E2E_FAIL=$((E2E_FAIL + 1)); echo "FAIL - $desc (wanted failure matching /$pattern/)"; echo "$out" | sed 's/^/       /'
  fi
}

finish() {
  echo "$E2E_PASS passed, $E2E_FAIL failed"
  if [ "$E2E_FAIL" -ne 0 ]; then
    echo "--- rcd log (tail) ---"; tail -n 40 "$E2E_WORK/rcd.log" || true
    exit 1
  fi
}
