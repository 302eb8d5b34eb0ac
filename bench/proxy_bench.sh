#!/usr/bin/env bash
# Service proxy programming benchmark: rc's nftables full sync (libnftnl batch) vs iptables-restore
# of the equivalent kube-proxy iptables ruleset, N Services x 10 endpoints, each into its own fresh
# netns (rctest-*), plus the incremental one-endpoint update at each N. Needs root.
#   bash bench/proxy_bench.sh [N...]      (default: 1000 10000 30000)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${RC_BUILD_DIR:-$root/build}/bin/rc-proxy-bench"
sizes=("${@:-1000 10000 30000}"); [ $# -eq 0 ] && sizes=(1000 10000 30000)
id=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
tmp=$(mktemp -d)
made=()
cleanup() { for n in "${made[@]}"; do ip netns del "$n" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
now() { date +%s.%N; }
printf '| services | rules (nft) | rc full sync ms | iptables-nft-restore ms | iptables-legacy-restore ms | ratio nft/legacy | rc delta p50 / p99 ms |\n|---|---|---|---|---|---|---|\n'
for n in "${sizes[@]}"; do
  a="rctest-pb-$id-nft-$n"; b="rctest-pb-$id-iptn-$n"; c="rctest-pb-$id-iptl-$n"
  for ns in "$a" "$b" "$c"; do ip netns add "$ns"; made+=("$ns"); done
  out=$("$bin" full --netns "/run/netns/$a" --services "$n" --endpoints 10 --updates 50)
  full=$(sed -n 's/.*sync_ms=\([0-9.]*\).*/\1/p' <<<"$out"); rules=$(sed -n 's/.* rules=\([0-9]*\).*/\1/p' <<<"$out")
  d50=$(sed -n 's/.*delta.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$out"); d99=$(sed -n 's/.*delta.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")
  grep -q "readback matches" <<<"$out" || echo "WARNING: readback differs at $n" >&2
  "$bin" iptables --services "$n" --endpoints 10 > "$tmp/rules-$n"
  t0=$(now); ip netns exec "$b" iptables-nft-restore < "$tmp/rules-$n"; t1=$(now)
  t2=$(now); ip netns exec "$c" iptables-legacy-restore < "$tmp/rules-$n"; t3=$(now)
  ipn=$(echo "($t1 - $t0) * 1000" | bc -l); ipl=$(echo "($t3 - $t2) * 1000" | bc -l)
  printf '| %s | %s | %.1f | %.0f (%.1fx) | %.0f (%.1fx) | | %s / %s |\n' "$n" "$rules" "$full" "$ipn" \
    "$(echo "$ipn / $full" | bc -l)" "$ipl" "$(echo "$ipl / $full" | bc -l)" "$d50" "$d99"
  for ns in "$a" "$b" "$c"; do ip netns del "$ns"; done; made=()
done
