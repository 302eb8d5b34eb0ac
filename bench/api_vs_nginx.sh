#!/usr/bin/env bash
# API server throughput: rcd's Kubernetes API (HTTP/1.1, keep-alive) side by side with nginx
# serving the very same response bytes as static files (the loopback limit on this machine).
#
#   bash bench/api_vs_nginx.sh
#
# GET one ConfigMap, LIST 1000 ConfigMaps (one namespace), CREATE (POST a new ConfigMap, unique
# names from bench/wrk/create.lua). nginx cannot serve a POST from static files, so CREATE is
# compared with nginx GETting a static file of the same size as rcd's create response.
# wrk: 2 threads, 64 connections, DURATION seconds each, --latency; rcd and nginx interleaved.
#
# Environment (defaults): DURATION=10  CONNECTIONS=64  THREADS=2  LIST_OBJECTS=1000
#   NGINX_WORKERS=2 (rcd serves HTTP on --io-threads 2 by default)
# Writes bench/results/api_vs_nginx.md and api_vs_nginx.jsonl.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
LIST_OBJECTS=${LIST_OBJECTS:-1000}
NGINX_WORKERS=${NGINX_WORKERS:-2}

bench_build rcd api_load
bench_init api
bench_wait_quiet
chmod 755 "$BENCH_WORK"  # nginx workers (user nobody) read the files below
OUT_MD=$RESULTS_DIR/api_vs_nginx.md
OUT_JSONL=$RESULTS_DIR/api_vs_nginx.jsonl
: >"$BENCH_WORK/results.jsonl"

bench_start_rcd "$BENCH_WORK/rcd"
bench_log "rcd on $RCD_API (pid $RCD_PID), idle RSS $(($(bench_rss_kb "$RCD_PID") / 1024)) MiB"

post() {  # post PATH JSON -> prints HTTP status
  curl -s -o "$BENCH_WORK/post.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "$2" "$RCD_API$1"
}

for ns in bench-list bench-create; do
  code=$(post /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}")
  [ "$code" = 201 ] || { bench_log "creating namespace $ns: HTTP $code: $(cat "$BENCH_WORK/post.out")"; exit 1; }
done

# The object for GET: a ConfigMap with labels, an annotation and ~600 bytes of data.
GET_PATH=/api/v1/namespaces/default/configmaps/bench-get
data=$(printf 'line %03d of the configuration file;' $(seq 1 20))
code=$(post /api/v1/namespaces/default/configmaps "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"bench-get\",\"labels\":{\"app\":\"bench\",\"tier\":\"api\"},\"annotations\":{\"bench.rc.dev/note\":\"GET benchmark object\"}},\"data\":{\"config.txt\":\"$data\"}}")
[ "$code" = 201 ] || { bench_log "creating bench-get: HTTP $code: $(cat "$BENCH_WORK/post.out")"; exit 1; }

# A ConfigMap shaped like the ones wrk/create.lua POSTs: its 201 response is what nginx serves as
# the CREATE peer (same size as rcd's create responses).
pad=$(printf 'x%.0s' $(seq 1 100))
code=$(post /api/v1/namespaces/bench-create/configmaps "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"wtemplate\",\"namespace\":\"bench-create\",\"labels\":{\"app\":\"bench\"}},\"data\":{\"v\":\"$pad\"}}")
[ "$code" = 201 ] || { bench_log "creating wtemplate: HTTP $code: $(cat "$BENCH_WORK/post.out")"; exit 1; }
cp "$BENCH_WORK/post.out" "$BENCH_WORK/create-response.json"

# The objects for LIST, created through the API with api_load (16 keep-alive connections).
bench_log "creating $LIST_OBJECTS ConfigMaps in bench-list"
CREATE_OUT=$("$BIN/api_load" --url "$RCD_API" --path /api/v1/namespaces/bench-list/configmaps --method POST \
  --namespace bench-list --name-prefix cm- --count "$LIST_OBJECTS" --concurrency 16 --body-size 200 \
  --label "bulk create $LIST_OBJECTS" --max-seconds 120)
echo "$CREATE_OUT" >&2
echo "$CREATE_OUT" | grep '^RESULT ' | sed 's/^RESULT //' >>"$BENCH_WORK/results.jsonl"
BULK_RPS=$(echo "$CREATE_OUT" | bench_json req_per_sec)
LIST_PATH=/api/v1/namespaces/bench-list/configmaps

# The exact bodies nginx will serve.
mkdir -p "$BENCH_WORK/www" "$BENCH_WORK/nginx/tmp"
chmod 755 "$BENCH_WORK/www" "$BENCH_WORK/nginx"
curl -sf "$RCD_API$GET_PATH" -o "$BENCH_WORK/www/get.json"
curl -sf "$RCD_API$LIST_PATH" -o "$BENCH_WORK/www/list.json"
cp "$BENCH_WORK/create-response.json" "$BENCH_WORK/www/create.json"
chmod 644 "$BENCH_WORK/www/"*.json
LIST_ITEMS=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$BENCH_WORK/www/list.json")
[ "$LIST_ITEMS" = "$LIST_OBJECTS" ] || { bench_log "LIST returned $LIST_ITEMS items, wanted $LIST_OBJECTS"; exit 1; }
GET_BYTES=$(stat -c %s "$BENCH_WORK/www/get.json")
LIST_BYTES=$(stat -c %s "$BENCH_WORK/www/list.json")
CREATE_BYTES=$(stat -c %s "$BENCH_WORK/www/create.json")
bench_log "bodies: GET $GET_BYTES B, LIST $LIST_BYTES B ($LIST_ITEMS items), CREATE response $CREATE_BYTES B"

NGINX_PORT=$(bench_free_port)
N=$BENCH_WORK/nginx
cat >"$N/nginx.conf" <<CONF
worker_processes $NGINX_WORKERS;
pid $N/nginx.pid;
error_log $N/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  client_body_temp_path $N/tmp/body;
  proxy_temp_path $N/tmp/proxy;
  fastcgi_temp_path $N/tmp/fastcgi;
  uwsgi_temp_path $N/tmp/uwsgi;
  scgi_temp_path $N/tmp/scgi;
  types { application/json json; }
  default_type application/json;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $BENCH_WORK/www;
    location / { }
  }
}
CONF
nginx -p "$N" -c "$N/nginx.conf" -g 'daemon off;' >"$N/stdout.log" 2>&1 &
NGINX_PID=$!
bench_track "$NGINX_PID"
NGINX=http://127.0.0.1:$NGINX_PORT
for _ in $(seq 1 50); do
  curl -sf "$NGINX/get.json" -o /dev/null && break
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$N/stdout.log" "$N/error.log" >&2 2>/dev/null; exit 1; }
  sleep 0.1
done
cmp -s <(curl -sf "$NGINX/get.json") "$BENCH_WORK/www/get.json" || { bench_log "nginx does not serve get.json"; exit 1; }
bench_log "nginx on $NGINX (pid $NGINX_PID, $NGINX_WORKERS workers)"

# run_wrk SERVER CASE URL [wrk args...]: one wrk run; appends a JSON line to results.jsonl.
run_wrk() {
  local server=$1 case=$2 url=$3; shift 3
  local out
  out=$(timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" 2>&1)
  echo "$out" >"$BENCH_WORK/wrk-$server-$case.txt"
  python3 "$BENCH_DIR/wrk/parse_wrk.py" "$server" "$case" "$url" <"$BENCH_WORK/wrk-$server-$case.txt" \
    >>"$BENCH_WORK/results.jsonl"
  tail -n1 "$BENCH_WORK/results.jsonl" >&2
}

CPU0=$(bench_cpu_ms "$RCD_PID")
bench_log "GET: rcd, nginx"
run_wrk rcd get "$RCD_API$GET_PATH"
run_wrk nginx get "$NGINX/get.json"
bench_log "LIST: rcd, nginx"
run_wrk rcd list "$RCD_API$LIST_PATH"
run_wrk nginx list "$NGINX/list.json"
bench_log "CREATE: rcd (POST), nginx (GET of a same-size static body)"
RC_BENCH_NS=bench-create RC_BENCH_PAD=100 run_wrk rcd create "$RCD_API/api/v1/namespaces/bench-create/configmaps" \
  -s "$BENCH_DIR/wrk/create.lua"
run_wrk nginx create "$NGINX/create.json"
CPU1=$(bench_cpu_ms "$RCD_PID")
CREATED=$(curl -sf --max-time 60 "$RCD_API/api/v1/namespaces/bench-create/configmaps" |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]) - 1)' 2>/dev/null || echo "?")
RCD_RSS=$(bench_rss_kb "$RCD_PID")

cp "$BENCH_WORK/results.jsonl" "$OUT_JSONL"
python3 - "$BENCH_WORK/results.jsonl" "$OUT_MD" <<PY
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
wrk = {(r["server"], r["case"]): r for r in rows if r.get("tool") == "wrk"}
def f(v, nd=2): return "?" if v is None else f"{v:.{nd}f}"
out = ["# API server: rcd vs nginx (same bytes, static)\n",
       "Generated by \`bench/api_vs_nginx.sh\` on $(date -u +%Y-%m-%dT%H:%MZ).\n",
       "- Machine: $(bench_machine). Client (wrk) and server share the 2 cores; loopback only. CPU busy with other work: ${BENCH_BUSY_AT_START}% before the run, $(bench_busy_pct)% at its end (servers idle).",
       "- Load: \`wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency\` (keep-alive), rcd and nginx interleaved.",
       "- rcd: default flags (HTTP --io-threads 2, fsync on). nginx 1.22 (Debian nginx-light), $NGINX_WORKERS workers, access_log off, sendfile, serving the exact bytes rcd returned.",
       "- Bodies: GET $GET_BYTES B (one ConfigMap), LIST $LIST_BYTES B ($LIST_ITEMS ConfigMaps of ~200 B), CREATE: a new ~250 B ConfigMap per request (wrk/create.lua); rcd answers 201 with the object ($CREATE_BYTES B). nginx cannot serve a POST from static files, so the CREATE peer is nginx GETting a static file of that size — an upper bound, not a like-for-like write.\n",
       "| case | rcd req/s | nginx req/s | rcd/nginx | rcd p50 ms | nginx p50 ms | rcd p99 ms | nginx p99 ms | rcd non-2xx |",
       "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
summary = []
for case, title in (("get", "GET one object"), ("list", "LIST $LIST_ITEMS objects"), ("create", "CREATE (nginx: GET same-size body)")):
    a, b = wrk.get(("rcd", case)), wrk.get(("nginx", case))
    if not a or not b: continue
    ratio = a["req_per_sec"] / b["req_per_sec"] if b["req_per_sec"] else 0
    out.append(f'| {title} | {a["req_per_sec"]:.0f} | {b["req_per_sec"]:.0f} | {ratio:.0%} | {f(a["p50_ms"])} | {f(b["p50_ms"])} | {f(a["p99_ms"])} | {f(b["p99_ms"])} | {a["non_2xx"]} |')
    summary.append({"case": case, "rcd_rps": a["req_per_sec"], "nginx_rps": b["req_per_sec"], "ratio": round(ratio, 3),
                    "rcd_p99_ms": a["p99_ms"], "nginx_p99_ms": b["p99_ms"], "rcd_non_2xx": a["non_2xx"]})
bulk = [r for r in rows if r.get("tool") == "api_load"]
if bulk:
    b = bulk[0]
    out.append(f'\nBulk creation of the LIST objects (\`api_load\`, 16 keep-alive connections, POST): {b["ok"]} created in {b["seconds"]:.2f} s = {b["req_per_sec"]:.0f}/s, p99 {b["lat_ms"]["p99"]:.2f} ms.')
out.append("\nObjects created by the CREATE run: $CREATED. rcd CPU during the wrk runs: $(((CPU1 - CPU0) / 1000)) s; RSS at the end: $((RCD_RSS / 1024)) MiB.")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
for s in summary:
    print("SUMMARY " + json.dumps({"bench": "api_vs_nginx", **s}))
PY
bench_log "wrote $OUT_MD"
cat "$OUT_MD"
