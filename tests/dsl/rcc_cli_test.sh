#!/usr/bin/env bash
# rcc as a CI job would run it. Usage: rcc_cli_test.sh RCC REPO_ROOT
set -uo pipefail
rcc=$1; root=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail=0
ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; fail=1; }

"$rcc" check "$root"/resources/*.rc && ok "rcc check resources/*.rc is clean" || bad "resources do not check clean"
stdlib=$(find "$root/stdlib" -name '*.rc' 2>/dev/null)
if [ -n "$stdlib" ]; then "$rcc" check -I "$root/resources" $stdlib && ok "stdlib checks clean" || bad "stdlib does not check clean"; fi

sed 's/progressDeadlineSeconds: int = 600 @min(1);/progressDeadlineSeconds: int = 600 @min(1);\n  rule "x" = replica > 0;/' "$root/resources/apps_v1.rc" > "$work/apps_v1.rc"
cp "$root/resources/core_v1.rc" "$work/"
line=$(grep -n 'rule "x" = replica > 0;' "$work/apps_v1.rc" | cut -d: -f1)
out=$("$rcc" check "$work/apps_v1.rc" 2>&1); code=$?
[ "$code" = 1 ] && ok "a misspelled field exits 1" || bad "exit code $code (want 1)"
echo "$out" | grep -q "apps_v1.rc:$line:14: error\[E0103\]: unknown name 'replica'" && ok "error names line $line column 14" || { bad "position"; echo "$out"; }
echo "$out" | grep -q "did you mean 'replicas'?" && ok "with a suggestion" || bad "suggestion"
echo "$out" | grep -q '\^\^\^\^\^\^\^' && ok "and a caret underline" || bad "caret"
json=$("$rcc" check --format=json "$work/apps_v1.rc" 2>/dev/null)
echo "$json" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[0]['line']==$line and d[0]['column']==14 and d[0]['code']=='E0103', d" \
  && ok "--format=json carries file, line, column and code" || bad "json: $json"
"$rcc" check /nonexistent.rc >/dev/null 2>&1; [ $? = 1 ] && ok "unreadable file exits 1" || bad "unreadable file exit"
"$rcc" frobnicate >/dev/null 2>&1; [ $? = 2 ] && ok "usage error exits 2" || bad "usage exit"
"$rcc" --help | grep -q "check" && ok "--help lists the subcommands" || bad "--help"
# (outputs go to files first: grep -q closing a pipe early would fail the producer under pipefail)
"$rcc" compile "$root/resources/core_v1.rc" -o "$work/core.o" && nm "$work/core.o" > "$work/nm.txt" &&
  grep -q "rc_col_Pod_1" "$work/nm.txt" && ok "rcc compile emits an object file with the column functions" || bad "compile -o"
"$rcc" compile --emit=llvm "$root/resources/core_v1.rc" > "$work/ir.ll" &&
  grep -q "define .*@rc_fn_podStatusReason" "$work/ir.ll" && ok "--emit=llvm prints optimised IR" || bad "--emit=llvm"
"$rcc" schema "$root/resources/apps_v1.rc" > "$work/schema.json" &&
  python3 -c "import json; d=json.load(open('$work/schema.json')); assert d['apps/v1/Deployment']['properties']['spec']['properties']['replicas']['minimum'] == 0" &&
  ok "rcc schema prints OpenAPI v3 (valid JSON, constraints included)" || bad "schema"
exit $fail
