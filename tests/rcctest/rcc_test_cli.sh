#!/usr/bin/env bash
# rcc test from the command line: the stdlib controller tests pass, a bad test file fails with its
# position on stderr, usage errors exit 2, --help exits 0.
set -euo pipefail
rcc="$1"
root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out="$("$rcc" test -I "$root/resources" "$root/stdlib/controllers/tests/replicaset.yaml")" || fail "replicaset tests: $out"
tail -n 1 <<<"$out" | grep -Eq '^[0-9]+ passed, 0 failed$' || fail "closing line: $out"

# -I takes one directory: the files after it are all test files.
out="$("$rcc" test -I "$root/resources" "$root/stdlib/controllers/tests/replicaset.yaml" "$root/stdlib/controllers/tests/endpoints.yaml")" || fail "two files: $out"
grep -q '^ok   .*replicaset.yaml' <<<"$out" && grep -q '^ok   .*endpoints.yaml' <<<"$out" || fail "both files run: $out"

out="$("$rcc" test -I "$root/resources" -k "adopts" -v "$root/stdlib/controllers/tests/replicaset.yaml")" || fail "filter: $out"
[ "$(grep -c '^ok ' <<<"$out")" = 1 ] || fail "-k selects one test: $out"
grep -q '^       unperturbed: [0-9]* reconciles, [0-9]* writes, 0 failed$' <<<"$out" || fail "-v lists the runs: $out"
grep -q '^       stale-cache: ' <<<"$out" || fail "-v lists the perturbed runs: $out"

printf 'files: [%s]\ntests:\n  - name: a\n    expct: {}\n' "$root/stdlib/controllers/replicaset.rc" >"$tmp/bad.yaml"
set +e
"$rcc" test -I "$root/resources" "$tmp/bad.yaml" >"$tmp/out" 2>"$tmp/err"
code=$?
set -e
[ "$code" = 1 ] || fail "bad file exit $code"
grep -q "bad.yaml:4:5: unknown key 'expct' in a test; did you mean 'expect'?" "$tmp/err" || fail "position: $(cat "$tmp/err")"
[ "$(tail -n 1 "$tmp/out")" = "0 passed, 1 failed" ] || fail "closing line: $(cat "$tmp/out")"

set +e
"$rcc" test >/dev/null 2>&1; [ $? = 2 ] || fail "no arguments should exit 2"
"$rcc" test "$tmp/missing.yaml" >/dev/null 2>&1; [ $? = 2 ] || fail "a missing file should exit 2"
"$rcc" test "$tmp" >/dev/null 2>&1; code=$?
set -e
[ "$code" = 1 ] || fail "a directory with a bad file should exit 1 (got $code)"
"$rcc" test --help | grep -q "reconciler unit tests" || fail "--help"
echo "rcc test CLI: ok"
