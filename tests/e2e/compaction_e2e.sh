#!/usr/bin/env bash
# rcd compacts old history periodically: a watch from a compacted resourceVersion gets 410 Gone
# (as an ERROR event), while current objects stay readable.
# Usage: compaction_e2e.sh RCD_BINARY
source "$(dirname "$0")/lib.sh"
start_rcd "$1" --compaction-interval-seconds 1

body='{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1"},"data":{"k":"v1"}}'
rv=$(curl -sS -X POST -H 'Content-Type: application/json' -d "$body" "$API/api/v1/namespaces/default/configmaps" |
     sed -E 's/.*"resourceVersion":"([0-9]+)".*/\1/')
check "created a configmap (rv $rv)" test -n "$rv"
curl -sS -X PATCH -H 'Content-Type: application/merge-patch+json' -d '{"data":{"k":"v2"}}' \
  "$API/api/v1/namespaces/default/configmaps/c1" >/dev/null
sleep 3  # at least two compaction ticks
expect_out "watch from a compacted revision is 410 Gone" '"type":"ERROR".*"code":410' \
  curl -sS --max-time 3 "$API/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=$rv"
expect_out "current object still readable" '"k":"v2"' curl -sS "$API/api/v1/namespaces/default/configmaps/c1"
expect_out "rcd logged the compaction" "compacted store history" cat "$E2E_WORK/rcd.log"
finish
