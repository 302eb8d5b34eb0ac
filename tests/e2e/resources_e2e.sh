#!/usr/bin/env bash
# Operator-defined resource types: .rc files in `rcd --resources DIR` are served like CRDs and
# reloaded on change, driven with the real kubectl.
# Usage: resources_e2e.sh RCD_BINARY KUBECTL
source "$(dirname "$0")/lib.sh"
KUBECTL=$2
dir="$E2E_WORK/resources"
mkdir -p "$dir"
cat >"$dir/widget.rc" <<'RC'
/// Widgets: an example operator-defined type.
resource Widget {
  group = "example.com";
  version = "v1";
  shortNames = ["wd"];
  subresource status;
  spec: WidgetSpec;
  status: WidgetStatus;
  column "Size": int = spec.size;
  column "Color" = spec.color;
  column "Summary" = "${spec.color}/${spec.size * 10}";
  column "Age": timestamp = metadata.creationTimestamp ?? now();
}

struct WidgetSpec {
  size: int = 1 @min(1) @max(100);
  color: Color = Blue;
  owner: string @required @format(dns1123Label);
}

struct WidgetStatus { phase: string?; }

enum Color { Red, Green, Blue }
RC
start_rcd "$1" --resources "$dir" --resources-poll-ms 200

expect_out "the type is in discovery" 'widgets.*wd.*Widget' "$KUBECTL" api-resources --api-group=example.com
expect_out "kubectl get on an empty type" 'No resources found' "$KUBECTL" get widgets
cat >"$E2E_WORK/w1.yaml" <<'YAML'
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  size: 3
  owner: team-a
YAML
expect_out "kubectl apply creates an instance" 'widget.example.com/w1 created' "$KUBECTL" apply -f "$E2E_WORK/w1.yaml"
expect_out "columns come from the DSL (json paths and compiled expressions)" 'w1 +3 +Blue +Blue/30 +[0-9]+s' "$KUBECTL" get widgets
expect_out "defaults were applied (color = Blue)" '"color": ?"Blue"' "$KUBECTL" get wd w1 -o json
cat >"$E2E_WORK/bad.yaml" <<'YAML'
apiVersion: example.com/v1
kind: Widget
metadata:
  name: bad
spec:
  size: 0
  color: Purple
  owner: team-a
YAML
expect_fail "an invalid instance is refused with the fields named" 'spec.size.*greater than or equal to 1' "$KUBECTL" apply -f "$E2E_WORK/bad.yaml"
expect_fail "unsupported enum value named" 'spec.color.*Unsupported value: "Purple"' "$KUBECTL" apply -f "$E2E_WORK/bad.yaml"
expect_out "422 over HTTP with causes" '"field":"spec.size".*"code":422' \
  curl -sS -X POST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"x"},"spec":{"size":0,"owner":"a"}}' \
  "$API/apis/example.com/v1/namespaces/default/widgets"
expect_out "fieldValidation=Strict names unknown fields" 'unknown field \\"spec.sise\\"' \
  curl -sS -X POST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"y"},"spec":{"sise":2,"owner":"a"}}' \
  "$API/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict"
# kubectl apply validates with fieldValidation=Strict by default; --validate=warn prints warnings.
sed -e 's/name: w1/name: wu/' -e 's/size: 3/size: 3\n  sise: 4/' "$E2E_WORK/w1.yaml" >"$E2E_WORK/wu.yaml"
expect_fail "kubectl apply refuses unknown fields" 'strict decoding error: unknown field "spec.sise"' "$KUBECTL" apply -f "$E2E_WORK/wu.yaml"
expect_out "kubectl apply --validate=warn warns and creates" 'Warning: unknown field "spec.sise"' "$KUBECTL" apply --validate=warn -f "$E2E_WORK/wu.yaml"
sed -i '/sise/d' "$E2E_WORK/wu.yaml"
expect_out "kubectl apply drops the unknown field again (null in the patch is no unknown field)" 'widget.example.com/wu configured' "$KUBECTL" apply -f "$E2E_WORK/wu.yaml"
expect_out "kubectl explain reads the OpenAPI v3 schema" 'size.*<integer>' "$KUBECTL" explain widgets.spec
expect_out "kubectl explain follows the ObjectMeta reference" 'ownerReferences.*<\[\]Object>' "$KUBECTL" explain widget.metadata
expect_out "OpenAPI v3 document carries the schema" '"size":\{[^}]*"minimum":1' curl -sS "$API/openapi/v3/apis/example.com/v1"

# Edit the file: the maximum drops to 5 and a column is added; rcd reloads within the poll period.
sed -i 's/@max(100)/@max(5)/; s|column "Color" = spec.color;|column "Color" = spec.color;\n  column "Owner" = spec.owner.upper();|' "$dir/widget.rc"
ok=0
for _ in $(seq 1 50); do
  if "$KUBECTL" get widgets 2>/dev/null | grep -q "TEAM-A"; then ok=1; break; fi
  sleep 0.1
done
check "an edited file is reloaded (new column)" test "$ok" = 1
sed -e 's/name: w1/name: w2/' -e 's/size: 3/size: 9/' "$E2E_WORK/w1.yaml" >"$E2E_WORK/w2.yaml"
expect_fail "the new maximum applies" 'less than or equal to 5' "$KUBECTL" apply -f "$E2E_WORK/w2.yaml"

# A broken edit is refused: the previous version keeps serving and the diagnostics are logged.
cp "$dir/widget.rc" "$E2E_WORK/widget.good"
sed -i 's/size: int = 1/size: nt = 1/' "$dir/widget.rc"
ok=0
for _ in $(seq 1 50); do
  if grep -q "unknown type 'nt'" "$E2E_WORK/rcd.log"; then ok=1; break; fi
  sleep 0.1
done
check "a file with errors is refused with its diagnostics logged" test "$ok" = 1
expect_out "the log names the file, line and column" 'widget.rc:17:9: error\[E0101\]' cat "$E2E_WORK/rcd.log"
expect_out "the previous version keeps serving" 'TEAM-A' "$KUBECTL" get widgets
sed -e 's/name: w1/name: w3/' "$E2E_WORK/w1.yaml" >"$E2E_WORK/w3.yaml"
expect_out "and keeps accepting instances" 'widget.example.com/w3 created' "$KUBECTL" apply -f "$E2E_WORK/w3.yaml"

expect_out "kubectl delete works on the type" 'widget.example.com "w3" deleted' "$KUBECTL" delete widget w3
expect_fail "the deleted instance is gone" 'NotFound' "$KUBECTL" get widget w3

# Removing the file stops serving the type (stored objects stay in the store).
cp "$E2E_WORK/widget.good" "$dir/widget.rc"
sleep 0.5
rm "$dir/widget.rc"
ok=0
for _ in $(seq 1 50); do
  if ! "$KUBECTL" api-resources --api-group=example.com 2>/dev/null | grep -q widgets; then ok=1; break; fi
  sleep 0.1
done
check "removing the file stops serving the type" test "$ok" = 1
expect_out "built-in types are unaffected" 'default' "$KUBECTL" get ns
finish
