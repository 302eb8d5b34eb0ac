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
"$fuzzer" -max_total_time="${RC_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
  -print_final_stats=1 "$work/corpus"
# Replay each hostile input on its own: every one must end without a crash or timeout.
for f in "$work/hostile"/*; do
  "$fuzzer" -rss_limit_mb=2048 -timeout=20 "$f" > "$work/log" 2>&1 || { cat "$work/log"; echo "FAILED on $(basename "$f")"; exit 1; }
done
echo "fuzz smoke: ok"
