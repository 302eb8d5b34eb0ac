#!/usr/bin/env python3
"""Turns wrk --latency output (stdin) into one JSON line: parse_wrk.py SERVER CASE URL."""
import json
import re
import sys


def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        return None
    x = float(m.group(1))
    return {"us": x / 1000, "ms": x, "s": x * 1000, "m": x * 60000}[m.group(2)]


text = sys.stdin.read()
res = {"tool": "wrk", "server": sys.argv[1], "case": sys.argv[2], "url": sys.argv[3]}
m = re.search(r"Requests/sec:\s+([\d.]+)", text)
res["req_per_sec"] = float(m.group(1)) if m else 0.0
for p in ("50", "75", "90", "99"):
    m = re.search(r"^\s+" + p + r"%\s+(\S+)", text, re.M)
    res["p" + p + "_ms"] = ms(m.group(1)) if m else None
m = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", text)
res["requests"] = int(m.group(1)) if m else 0
res["read"] = m.group(3) if m else ""
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
res["non_2xx"] = int(m.group(1)) if m else 0
m = re.search(r"Socket errors: (.*)", text)
res["socket_errors"] = m.group(1).strip() if m else ""
print(json.dumps(res))
