-- wrk script: POST a new ConfigMap per request (unique names across threads and connections).
--   RC_BENCH_NS   namespace (default "bench-create")
--   RC_BENCH_PAD  bytes of filler in data.v (default 100)
-- Path: the collection URL, e.g. http://127.0.0.1:P/api/v1/namespaces/bench-create/configmaps
local ns = os.getenv("RC_BENCH_NS") or "bench-create"
local pad = string.rep("x", tonumber(os.getenv("RC_BENCH_PAD") or "100"))
local next_id = 0
local counter = 0
-- `id` is a global on purpose: setup() sets it in each thread's Lua state with thread:set.
id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
end

function request()
  counter = counter + 1
  local body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w' .. id .. '-' .. counter ..
      '","namespace":"' .. ns .. '","labels":{"app":"bench"}},"data":{"v":"' .. pad .. '"}}'
  return wrk.format("POST", nil, nil, body)
end
