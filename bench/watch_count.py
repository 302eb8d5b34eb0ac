#!/usr/bin/env python3
"""Counts objects appearing on a Kubernetes watch and reports when a target count is reached.

    watch_count.py --url http://127.0.0.1:PORT --path /api/v1/namespaces/default/pods \
        --target 10000 [--timeout 600] [--ready-file F] [--match TEXT]

Opens one watch (HTTP/1.1 chunked, one JSON event per line), writes --ready-file once the stream
is open (start the load after that), counts ADDED events (of lines containing --match, if given:
a cheap substring test, no JSON parse), prints progress to stderr once a second and, at the end,
one line "RESULT {json}" with wall-clock (epoch) times of the first event, of 10/50/90/100 % of
the target and the count seen. Exit status 1 on timeout (the RESULT line is printed anyway).
"""
import argparse
import http.client
import json
import sys
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--ready-file", default="")
    ap.add_argument("--match", default="")
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    u = urllib.parse.urlparse(a.url)
    if u.hostname not in ("127.0.0.1", "localhost"):
        sys.exit("watch_count: loopback only")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=a.timeout)
    sep = "&" if "?" in a.path else "?"
    conn.request("GET", a.path + sep + "watch=1&timeoutSeconds=%d" % int(a.timeout + 60))
    resp = conn.getresponse()
    if resp.status != 200:
        sys.exit("watch_count: HTTP %d: %s" % (resp.status, resp.read(500)))
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")

    start = time.time()
    deadline = start + a.timeout
    marks = {10: None, 50: None, 90: None, 100: None}
    first = None
    count = 0
    last_print = start
    last_count = 0
    match = a.match.encode()
    while count < a.target:
        if time.time() > deadline:
            break
        line = resp.readline()
        if not line:
            break  # stream closed
        if not line.startswith(b'{"type":"ADDED"'):
            continue
        if match and match not in line:
            continue
        count += 1
        now = time.time()
        if first is None:
            first = now
        for pct in marks:
            if marks[pct] is None and count * 100 >= pct * a.target:
                marks[pct] = now
        if now - last_print >= 1.0:
            rate = (count - last_count) / (now - last_print)
            print("[%s] %s%d / %d (%.0f/s over the last second)" %
                  (time.strftime("%H:%M:%S"), a.label + ": " if a.label else "", count, a.target, rate),
                  file=sys.stderr, flush=True)
            last_print, last_count = now, count
    result = {"tool": "watch_count", "label": a.label, "target": a.target, "count": count,
              "first": first, "p10": marks[10], "p50": marks[50], "p90": marks[90], "done": marks[100]}
    print("RESULT " + json.dumps(result), flush=True)
    sys.exit(0 if count >= a.target else 1)


if __name__ == "__main__":
    main()
