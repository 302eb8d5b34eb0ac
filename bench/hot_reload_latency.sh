#!/usr/bin/env bash
# Hot reload of a controller: from writing a changed controller file into `rcd --controllers DIR`
# to the new code serving.
#
#   bash bench/hot_reload_latency.sh
#
# A fresh rcd (embedded store, default flags plus --controllers DIR) runs one Deployment (1
# replica, so one ReplicaSet). EDITS times, a copy of stdlib/controllers/replicaset.rc whose
# reconcile starts with `emit(rs, "Normal", "Reloaded", "reload-vI")` is moved into DIR
# (written beside it, then renamed: the file appears complete). The manager re-enqueues every
# primary object when a controller is replaced, so the first reconcile with the new code emits
# that Event; one event watch (bench/watch_count.py --match) sees it. Per edit:
#   - to loaded: write -> rcd's log line "controllers DIR/replicaset.rc: 1 controller(s) loaded in
#     X ms" (its timestamp); split into detection (write -> start of the load = line time - X) and
#     compile (X: check + codegen + JIT + install);
#   - to first reconcile: write -> the Event from the new code is seen on the watch (includes the
#     Event write by the recorder thread and the watch delivery).
# Reports p50 / max over the edits against the issue's goal (< 100 ms).
#
# Environment (defaults): EDITS=10  PAUSE=1 (s between edits)  POLL_MS= (--controllers-poll-ms,
#   empty: rcd's default; rcd also watches DIR with inotify)
# Writes bench/results/hot_reload.md and .jsonl.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EDITS=${EDITS:-10}
PAUSE=${PAUSE:-1}
POLL_MS=${POLL_MS:-}
SRC=$REPO_ROOT/stdlib/controllers/replicaset.rc

bench_build rcd
bench_init hotreload
bench_wait_quiet
OUT_MD=$RESULTS_DIR/hot_reload.md
OUT_JSONL=$RESULTS_DIR/hot_reload.jsonl
CTRL_DIR=$BENCH_WORK/controllers
STAGE=$BENCH_WORK/stage
mkdir -p "$CTRL_DIR" "$STAGE"
: >"$BENCH_WORK/results.jsonl"

flags=(--controllers "$CTRL_DIR")
[ -n "$POLL_MS" ] && flags+=(--controllers-poll-ms "$POLL_MS")
BENCH_RCD_LOG_LEVEL=info bench_start_rcd "$BENCH_WORK/rcd" "${flags[@]}"
LOG=$BENCH_WORK/rcd/rcd.log
bench_wait_line "$LOG" "acquired lease" "$RCD_PID" 30
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' "$RCD_API/apis/apps/v1/namespaces/default/deployments" \
  -d '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"reload"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"reload"}},"template":{"metadata":{"labels":{"app":"reload"}},"spec":{"containers":[{"name":"main","image":"busybox:1.36"}]}}}}'
for _ in $(seq 1 100); do
  n=$(curl -sf "$RCD_API/api/v1/namespaces/default/pods" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
  [ "$n" -ge 1 ] && break
  sleep 0.1
done
bench_log "Deployment reload has its ReplicaSet and pod; $EDITS edits of $CTRL_DIR/replicaset.rc"

# Log line time (spdlog local time, ms) -> epoch seconds.
log_epoch() {
  python3 -c 'import sys, time, datetime; d = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%d %H:%M:%S.%f"); print("%.3f" % (time.mktime(d.timetuple()) + d.microsecond / 1e6))' "$1"
}

for i in $(seq 1 "$EDITS"); do
  sed "s/^  reconcile(rs: ReplicaSet) {\$/  reconcile(rs: ReplicaSet) {\n    emit(rs, \"Normal\", \"Reloaded\", \"reload-v$i\");/" "$SRC" >"$STAGE/replicaset.rc"
  grep -q "reload-v$i" "$STAGE/replicaset.rc" || { bench_log "the edit did not apply to $SRC"; exit 1; }
  rm -f "$BENCH_WORK/watch.ready"
  python3 "$BENCH_DIR/watch_count.py" --url "$RCD_API" --path /api/v1/namespaces/default/events --target 1 \
    --match "\"message\":\"reload-v$i\"" --timeout 30 --ready-file "$BENCH_WORK/watch.ready" >"$BENCH_WORK/watch-$i.out" 2>/dev/null &
  WATCH_PID=$!
  bench_track "$WATCH_PID"
  for _ in $(seq 1 100); do [ -f "$BENCH_WORK/watch.ready" ] && break; sleep 0.05; done
  loads_before=$(grep -c "controllers $CTRL_DIR/replicaset.rc: 1 controller(s) loaded" "$LOG" || true)
  t_write=$(date +%s.%N)
  mv "$STAGE/replicaset.rc" "$CTRL_DIR/replicaset.rc"
  wait "$WATCH_PID" || bench_log "edit $i: no Event from the new code within 30 s"
  line=""
  for _ in $(seq 1 100); do
    line=$(grep "controllers $CTRL_DIR/replicaset.rc: 1 controller(s) loaded" "$LOG" | sed -n "$((loads_before + 1))p")
    [ -n "$line" ] && break
    sleep 0.05
  done
  [ -n "$line" ] || { bench_log "edit $i: no load line in the log"; tail -5 "$LOG" >&2; exit 1; }
  ts=$(echo "$line" | sed -E 's/^\[([^]]+)\].*/\1/')
  compile_ms=$(echo "$line" | sed -E 's/.* loaded in ([0-9.]+) ms.*/\1/')
  t_log=$(log_epoch "$ts")
  W=$(grep '^RESULT ' "$BENCH_WORK/watch-$i.out" | sed 's/^RESULT //')
  t_first=$(echo "RESULT $W" | bench_json first)
  python3 - "$t_write" "$t_log" "$compile_ms" "$t_first" "$i" >>"$BENCH_WORK/results.jsonl" <<'PY'
import json, sys
t_write, t_log, compile_ms = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
first = None if sys.argv[4] in ("None", "") else float(sys.argv[4])
to_log = (t_log - t_write) * 1000
print(json.dumps({"edit": int(sys.argv[5]), "to_loaded_ms": round(to_log, 1), "compile_ms": compile_ms,
                  "detect_ms": round(max(0.0, to_log - compile_ms), 1),
                  "to_first_reconcile_ms": round((first - t_write) * 1000, 1) if first else None}))
PY
  bench_log "edit $i: $(tail -1 "$BENCH_WORK/results.jsonl")"
  sleep "$PAUSE"
done
poll_default=$("$BIN/rcd" --help 2>/dev/null | grep -E -- '--controllers-poll-ms' | grep -oE '[0-9]+' | tail -1 || true)
bench_stop "$RCD_PID"

cp "$BENCH_WORK/results.jsonl" "$OUT_JSONL"
python3 - "$BENCH_WORK/results.jsonl" "$OUT_MD" <<PY
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def stats(key):
    v = sorted(r[key] for r in rows if r.get(key) is not None)
    if not v:
        return None, None
    return (v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2), v[-1]
out = ["# Hot reload of a controller file\n",
       "Generated by \`bench/hot_reload_latency.sh\` on $(date -u +%Y-%m-%dT%H:%MZ) (EDITS=$EDITS). Machine: $(bench_machine); "
       "CPU busy with other work before the run: ${BENCH_BUSY_AT_START}%.\n",
       "rcd with \`--controllers DIR\` ${POLL_MS:+--controllers-poll-ms $POLL_MS }(poll interval ${POLL_MS:-${poll_default:-default} ms (default)}, plus inotify on DIR); "
       "each edit renames a changed replicaset.rc into DIR. Loaded = rcd's log line \"controllers ...: 1 controller(s) loaded in X ms\"; "
       "compile = X (check with the built-in types + codegen + O2 JIT + install); detection = loaded - X; first reconcile = the Event "
       "the new code emits first is seen on a watch. Times in ms from the rename.\n",
       "| measurement | p50 ms | max ms | goal | p50 / goal |",
       "|---|---:|---:|---:|---:|"]
for key, name in [("detect_ms", "detection (write -> load starts)"), ("compile_ms", "compile + install"),
                  ("to_loaded_ms", "write -> loaded (log line)"), ("to_first_reconcile_ms", "write -> first reconcile with the new code")]:
    p50, mx = stats(key)
    goal = "100" if key in ("to_loaded_ms", "to_first_reconcile_ms") else ""
    ratio = f"{p50 / 100:.2f}x" if goal and p50 is not None else ""
    out.append(f"| {name} | {p50 if p50 is not None else '–'} | {mx if mx is not None else '–'} | {goal} | {ratio} |")
out.append("\nPer edit (ms): " + "; ".join(f'{r["edit"]}: detect {r["detect_ms"]}, compile {r["compile_ms"]}, first reconcile {r["to_first_reconcile_ms"]}' for r in rows) + ".")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
for key in ("detect_ms", "compile_ms", "to_loaded_ms", "to_first_reconcile_ms"):
    p50, mx = stats(key)
    print("SUMMARY " + json.dumps({"bench": "hot_reload", "measurement": key, "p50_ms": p50, "max_ms": mx}))
PY
bench_log "wrote $OUT_MD"
cat "$OUT_MD"
