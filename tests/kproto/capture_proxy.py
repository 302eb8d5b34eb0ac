#!/usr/bin/env python3
"""Recording HTTP proxy used to (re)generate tests/kproto/testdata.

Forwards every request to an upstream API server (e.g. a local `rcd`) and writes the body of each
request sent as application/vnd.kubernetes.protobuf to OUT_DIR/NNN-METHOD-<path>.pb.

  rcd --data-dir /tmp/d --listen 127.0.0.1:0 --etcd-listen ''     # prints api=http://127.0.0.1:PORT
  python3 capture_proxy.py 127.0.0.1:PORT 18080 /tmp/captures &
  kubectl --server http://127.0.0.1:18080 create namespace demo
"""
import http.client
import http.server
import os
import sys
import threading

UPSTREAM = sys.argv[1]
PORT = int(sys.argv[2])
OUT_DIR = sys.argv[3]
counter = [0]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        sys.stderr.write("%s %s %s %d\n" % (self.command, self.path, ctype, len(body)))
        sys.stderr.flush()
        if body and "protobuf" in ctype:
            with lock:
                counter[0] += 1
                n = counter[0]
            name = "%03d-%s-%s.pb" % (n, self.command, self.path.split("?")[0].strip("/").replace("/", "_"))
            with open(os.path.join(OUT_DIR, name), "wb") as f:
                f.write(body)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn = http.client.HTTPConnection(UPSTREAM, timeout=30)
        conn.request(self.command, self.path, body=body if body else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
