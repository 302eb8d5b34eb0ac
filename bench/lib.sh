# Shared helpers for the benchmark scripts (sourced, not run).
#
# Every process a script starts is recorded with bench_track PID and stopped by the EXIT trap
# (SIGTERM, then SIGKILL after 5 s) — only those PIDs, never anything matched by name. The temp
# work dir is removed on exit as well. All servers listen on 127.0.0.1 only.
#
# Environment:
#   BENCH_BUILD   build dir (default: <repo>/build-bench); configured and built on demand
#   BENCH_NO_BUILD=1  use the binaries already in BENCH_BUILD
#   BENCH_TMP     where temp data dirs go (default /tmp; must be a real disk for fsync to mean
#                 anything — the scripts print its file-system type)
#   BENCH_KEEP=1  keep the work dir (logs, data) for inspection
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_BUILD=${BENCH_BUILD:-$REPO_ROOT/build-bench}
BENCH_TMP=${BENCH_TMP:-/tmp}
BIN=$BENCH_BUILD/bin
RESULTS_DIR=$BENCH_DIR/results
mkdir -p "$RESULTS_DIR"

BENCH_PIDS=()
BENCH_WORK=""

bench_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

bench_cleanup() {
  local rc=$?
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${BENCH_PIDS[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [ -n "$BENCH_WORK" ] && [ -d "$BENCH_WORK" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
      bench_log "kept $BENCH_WORK"
    else
      rm -rf "$BENCH_WORK"
    fi
  fi
  return $rc
}

# bench_init NAME: creates the work dir and installs the cleanup trap.
bench_init() {
  BENCH_WORK=$(mktemp -d "$BENCH_TMP/rc-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_track() { BENCH_PIDS+=("$1"); }

# bench_stop PID: stops one process this script started (TERM, then KILL after 10 s).
bench_stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  local p
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  BENCH_PIDS=("${kept[@]+"${kept[@]}"}")
}

# bench_build TARGET...: configures BENCH_BUILD if needed and builds only the given targets.
bench_build() {
  if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then return 0; fi
  if [ ! -f "$BENCH_BUILD/build.ninja" ]; then
    cmake -S "$REPO_ROOT" -B "$BENCH_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  fi
  ninja -C "$BENCH_BUILD" "$@" >&2
}

# bench_free_port: a TCP port free on 127.0.0.1 right now.
bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# bench_wait_line FILE REGEX PID [SECONDS]: waits until FILE has a line matching REGEX.
bench_wait_line() {
  local file=$1 re=$2 pid=$3 secs=${4:-30}
  local i
  for i in $(seq 1 $((secs * 10))); do
    if grep -Eq "$re" "$file" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      bench_log "process $pid exited before '$re'"; return 1
    fi
    sleep 0.1
  done
  bench_log "timed out waiting for '$re' in $file"
  return 1
}

# bench_rss_kb PID: VmRSS in kB.
bench_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# bench_hwm_kb PID: VmHWM (peak RSS) in kB.
bench_hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# bench_cpu_ms PID: user+system CPU time consumed so far, in ms.
bench_cpu_ms() {
  local tck
  tck=$(getconf CLK_TCK)
  # Field 2 (comm) may contain spaces: strip through the closing parenthesis first.
  sed -E 's/^.*\) //' "/proc/$1/stat" | awk -v t="$tck" '{print int(($12 + $13) * 1000 / t)}'
}

# bench_start_etcd DIR: starts Debian's etcd (single member, default fsync) on free loopback
# ports; sets ETCD_PID and ETCD_EP (host:port).
bench_start_etcd() {
  local dir=$1
  local cport pport
  cport=$(bench_free_port)
  pport=$(bench_free_port)
  while [ "$pport" = "$cport" ]; do pport=$(bench_free_port); done
  mkdir -p "$dir"
  etcd --name bench --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "bench=http://127.0.0.1:$pport" --initial-cluster-state new \
    --listen-metrics-urls "" --log-level warn --logger zap \
    >"$dir/etcd.log" 2>&1 &
  ETCD_PID=$!
  bench_track "$ETCD_PID"
  ETCD_EP=127.0.0.1:$cport
  local i
  for i in $(seq 1 100); do
    if ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" --dial-timeout 1s endpoint health >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$ETCD_PID" 2>/dev/null || { cat "$dir/etcd.log" >&2; return 1; }
    sleep 0.2
  done
  bench_log "etcd did not become healthy"; cat "$dir/etcd.log" >&2; return 1
}

# bench_start_rc_etcd DIR: starts rc-etcd (RocksDB store, fsync on) on a free port; sets
# RCETCD_PID and RCETCD_EP.
bench_start_rc_etcd() {
  local dir=$1
  mkdir -p "$dir"
  "$BIN/rc-etcd" --data-dir "$dir/data" --listen 127.0.0.1:0 >"$dir/rc-etcd.out" 2>"$dir/rc-etcd.log" &
  RCETCD_PID=$!
  bench_track "$RCETCD_PID"
  bench_wait_line "$dir/rc-etcd.out" "listening on" "$RCETCD_PID" 30 || { cat "$dir/rc-etcd.log" >&2; return 1; }
  RCETCD_EP=$(sed -nE 's/.*listening on ([^ ]+).*/\1/p' "$dir/rc-etcd.out" | head -n1)
}

# bench_start_rcd DIR [flags...]: starts rcd (fsync on) on free ports; sets RCD_PID, RCD_API
# (http://host:port) and RCD_ETCD (host:port). Logs at BENCH_RCD_LOG_LEVEL (default warn).
bench_start_rcd() {
  local dir=$1; shift
  mkdir -p "$dir"
  "$BIN/rcd" --data-dir "$dir/data" --listen 127.0.0.1:0 --etcd-listen 127.0.0.1:0 --log-level "${BENCH_RCD_LOG_LEVEL:-warn}" "$@" \
    >"$dir/rcd.out" 2>"$dir/rcd.log" &
  RCD_PID=$!
  bench_track "$RCD_PID"
  bench_wait_line "$dir/rcd.out" "rcd ready" "$RCD_PID" 60 || { cat "$dir/rcd.log" >&2; return 1; }
  local line
  line=$(grep "rcd ready" "$dir/rcd.out" | head -n1)
  RCD_API=$(echo "$line" | sed -E 's/.*api=([^ ]+).*/\1/')
  RCD_ETCD=$(echo "$line" | sed -E 's/.*etcd=([^ ]+).*/\1/')
}

# bench_json FIELD-PATH: reads a RESULT line on stdin, prints the field (python, no jq needed).
bench_json() {
  python3 -c '
import json, sys
path = sys.argv[1].split(".")
for line in sys.stdin:
    if line.startswith("RESULT "):
        v = json.loads(line[7:])
        for p in path:
            v = v[p]
        print(v)
        break
' "$1"
}

# bench_machine: one line describing the machine.
bench_machine() {
  local cpu
  cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
  echo "$(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -r), data on $(df -T "$BENCH_TMP" | awk 'NR==2 {print $2}') ($BENCH_TMP)"
}

# bench_fsync_probe DIR: median-ish cost of one 4 KiB write + fdatasync on DIR's disk, in ms.
bench_fsync_probe() {
  local dir=$1
  local t0 t1
  t0=$(date +%s%N)
  dd if=/dev/zero of="$dir/fsync-probe" bs=4096 count=500 oflag=dsync status=none
  t1=$(date +%s%N)
  rm -f "$dir/fsync-probe"
  awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.3f", ns / 500 / 1e6}'
}

# bench_busy_pct: % of all CPUs busy (not idle/iowait) over one second, machine-wide.
bench_busy_pct() {
  local a b
  a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  echo "$a $b" | awk '{busy = $3 - $1; idle = $4 - $2; t = busy + idle; printf "%d", (t > 0 ? 100 * busy / t : 0)}'
}

# bench_wait_quiet: other work on the machine skews every figure (2 cores). Waits until the
# machine is idle (< BENCH_QUIET_PCT % busy, default 15, three samples in a row), at most
# BENCH_QUIET_WAIT seconds (default 600; 0 = don't wait). Sets BENCH_BUSY_AT_START.
bench_wait_quiet() {
  local limit=${BENCH_QUIET_WAIT:-600} pct=${BENCH_QUIET_PCT:-15}
  local start=$SECONDS ok=0 busy=0 last_log=-100
  while :; do
    busy=$(bench_busy_pct)
    if [ "$busy" -lt "$pct" ]; then ok=$((ok + 1)); else ok=0; fi
    if [ "$ok" -ge 3 ] || [ $((SECONDS - start)) -ge "$limit" ]; then break; fi
    if [ "$ok" -eq 0 ] && [ $((SECONDS - last_log)) -ge 60 ]; then
      bench_log "machine is ${busy}% busy with other work; waiting (up to ${limit}s)"
      last_log=$SECONDS
    fi
  done
  BENCH_BUSY_AT_START=$busy
  if [ "$busy" -ge "$pct" ]; then
    bench_log "WARNING: machine still ${busy}% busy with other work; figures will be skewed"
  fi
}
