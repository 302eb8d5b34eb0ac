#!/usr/bin/env bash
# Service proxy benchmark, side by side in one run: rc's nftables full sync (one libnftnl batch)
# vs iptables-nft-restore and iptables-legacy-restore of the equivalent kube-proxy iptables ruleset
# (KUBE-SERVICES / KUBE-SVC-* / KUBE-SEP-*, statistic random), N Services x 10 endpoints, each
# into its own fresh netns (rctest-pb-*); the one-endpoint incremental update at each N; and the
# first-packet latency: TCP connect time through the last Service's ClusterIP (the last
# KUBE-SERVICES rule, iptables' worst case) to a backend in the same netns, through each ruleset.
# Needs root; touches nothing outside the namespaces it creates (deleted on exit, also on failure).
#   RC_BUILD_DIR=build-proxy bash bench/proxy_bench.sh [N...]      (default: 1000 10000 30000)
#   PROXY_BENCH_SAMPLES=2000 (connects per ruleset)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${RC_BUILD_DIR:-$root/build}/bin/rc-proxy-bench"
[[ "$bin" = /* ]] || bin="$root/$bin"
sizes=("$@"); [ $# -eq 0 ] && sizes=(1000 10000 30000)
samples="${PROXY_BENCH_SAMPLES:-2000}"
id=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
tmp=$(mktemp -d)
made=()
cleanup() { for n in "${made[@]}"; do ip netns del "$n" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
now() { date +%s.%N; }
backend=10.244.0.3:8080
# The client and the backend live in the ruleset's netns (the nat OUTPUT hook does the DNAT): a
# device (one end of a veth pair inside the netns; this kernel has no dummy driver) with an
# in-cluster client address (no masquerade) and the backend's address.
prepare() {
  ip -n "$1" link set lo up
  ip -n "$1" link add d0 type veth peer name d1
  ip -n "$1" link set d1 up
  ip -n "$1" addr add 10.244.0.2/32 dev d0
  ip -n "$1" addr add 10.244.0.3/32 dev d0
  ip -n "$1" link set d0 up
  ip -n "$1" route add 10.96.0.0/12 dev d0 src 10.244.0.2
}
latency() {  # netns vip -> "p50 / p99"
  local out
  out=$(ip netns exec "$1" "$bin" connect "$2:80" "$samples" "$backend") || echo "WARNING: failed connects in $1: $out" >&2
  echo "$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$out") / $(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")"
}
vip_of() { python3 -c "import ipaddress,sys; print(ipaddress.ip_address('10.96.0.0') + int(sys.argv[1]))" "$1"; }
echo "kernel $(uname -r), $(nproc) cpus, $(iptables-nft --version), samples=$samples"
printf '| services x 10 eps | rc rules | rc full sync ms | iptables-nft-restore ms (rc faster by) | iptables-legacy-restore ms (rc faster by) | rc delta p50 / p99 ms | connect p50 / p99 ms: rc | iptables-nft | iptables-legacy |\n|---|---|---|---|---|---|---|---|---|\n'
for n in "${sizes[@]}"; do
  a="rctest-pb-$id-nft-$n"; b="rctest-pb-$id-iptn-$n"; c="rctest-pb-$id-iptl-$n"
  for ns in "$a" "$b" "$c"; do ip netns add "$ns"; made+=("$ns"); prepare "$ns"; done
  out=$("$bin" full --netns "/run/netns/$a" --services "$n" --endpoints 10 --updates 50 --backend "$backend")
  full=$(sed -n 's/.*sync_ms=\([0-9.]*\).*/\1/p' <<<"$out"); rules=$(sed -n 's/.* rules=\([0-9]*\).*/\1/p' <<<"$out")
  d50=$(sed -n 's/.*delta.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$out"); d99=$(sed -n 's/.*delta.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")
  grep -q "readback matches" <<<"$out" || echo "WARNING: readback differs at $n" >&2
  "$bin" iptables --services "$n" --endpoints 10 --backend "$backend" > "$tmp/rules-$n"
  vip=$(vip_of "$n")
  # restore TOOL NETNS -> "ms (ratio)" and the latency through it, or "FAILED after ms" and "-"
  restore() {
    local t0 t1 ms
    t0=$(now)
    if ip netns exec "$2" "$1" < "$tmp/rules-$n" 2>"$tmp/err"; then
      t1=$(now); ms=$(echo "($t1 - $t0) * 1000" | bc -l)
      printf '%.0f (%.1fx)\t%s\n' "$ms" "$(echo "$ms / $full" | bc -l)" "$(latency "$2" "$vip")"
    else
      t1=$(now); ms=$(echo "($t1 - $t0) * 1000" | bc -l)
      echo "$1 at $n: $(cat "$tmp/err")" >&2
      printf 'FAILED after %.0f\t-\n' "$ms"
    fi
  }
  IFS=$'\t' read -r ipn lb < <(restore iptables-nft-restore "$b")
  IFS=$'\t' read -r ipl lc < <(restore iptables-legacy-restore "$c")
  la=$(latency "$a" "$vip")
  printf '| %s | %s | %.0f | %s | %s | %s / %s | %s | %s | %s |\n' "$n" "$rules" "$full" "$ipn" "$ipl" "$d50" "$d99" \
    "$la" "$lb" "$lc"
  for ns in "$a" "$b" "$c"; do ip netns del "$ns"; done; made=()
done
