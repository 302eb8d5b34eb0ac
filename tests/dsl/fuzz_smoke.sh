#!/usr/bin/env bash
# Runs the DSL fuzzer for a short while over a seed corpus (copied to a temp dir, which libFuzzer
# may grow), then replays hostile inputs: deep nesting, long operator chains, a huge file, bad bytes.
set -euo pipefail
fuzzer="$1"; shift
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/hostile"
for dir in "$@"; do find "$dir" -name '*.rc' -exec cp {} "$work/corpus/" \; ; done
python3 - "$work/hostile" <<'PY'
import sys, os
d = sys.argv[1]
def w(name, text):
    with open(os.path.join(d, name), "wb") as f: f.write(text if isinstance(text, bytes) else text.encode())
w("parens", "fn f() -> int = " + "(" * 100000 + "1" + ")" * 100000 + ";")
w("unary", "fn f() -> bool = " + "!" * 100000 + "true;")
w("coalesce", "fn f() -> int = " + "a ?? " * 50000 + "1;")
w("elseif", "fn f(x: int) -> int { if x == 0 { return 0; } " + "else if x == 1 { return 1; } " * 30000 + "return 2; }")
w("blocks", "fn f() { " + "{ " * 100000 + "} " * 100000 + "}")
w("chain", "fn f(x: int) -> int = " + "x + " * 200000 + "1;")
w("interp", 'fn f() -> string = "' + "${" * 5000 + '";')
w("binary", bytes(range(256)) * 100)
w("huge", "struct S { a: int; }\n" * 400000)
PY
# CI replays the same mutations every time (fixed seed and run count, capped in time for a slow
# machine); RC_FUZZ_SECONDS=N explores for N seconds with a fresh seed instead. A crash, leak,
# timeout or OOM is summarised (the full log would be cut off by ctest's output limit) and its
# input kept under $RC_FUZZ_ARTIFACTS (default: the build's fuzz-artifacts/) for replay.
artifacts="${RC_FUZZ_ARTIFACTS:-$(pwd)/fuzz-artifacts}"
mkdir -p "$artifacts"
if [ -n "${RC_FUZZ_SECONDS:-}" ]; then
  budget=(-max_total_time="$RC_FUZZ_SECONDS")
else
  budget=(-seed="${RC_FUZZ_SEED:-20261202}" -runs="${RC_FUZZ_RUNS:-800}" -max_total_time=120)
fi
if ! "$fuzzer" "${budget[@]}" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
     -artifact_prefix="$artifacts/" "$work/corpus" > "$work/fuzz.log" 2>&1; then
  echo "FAILED: the fuzzer stopped on an input; what it reported:"
  grep -E "ERROR|ALARM|SUMMARY: (Address|Leak|Memory)|Test unit written|Base64|out-of-memory|==[0-9]+==|#[0-9]+ 0x" \
    "$work/fuzz.log" | grep -v "UndefinedBehaviorSanitizer: undefined-behavior /usr/include" | head -60 || true
  echo "--- last lines of the fuzzer's log ---"
  tail -n 25 "$work/fuzz.log"
  exit 1
fi
grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb|stat::slowest_unit_time_sec)" "$work/fuzz.log" || true
# Replay each hostile input on its own: every one must end without a crash or timeout.
for f in "$work/hostile"/*; do
  "$fuzzer" -rss_limit_mb=2048 -timeout=20 "$f" > "$work/log" 2>&1 || { cat "$work/log"; echo "FAILED on $(basename "$f")"; exit 1; }
done
echo "fuzz smoke: ok"
