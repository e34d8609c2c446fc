-- GET $BENCH_PATH from crier with a key (env CRIER_KEY), e.g. /v1/messages/msg_…,
-- /v1/messages?limit=50 or /v1/billing. Reports through common.lua.
dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")
local path = os.getenv("BENCH_PATH") or "/readyz"
local headers = { ["Authorization"] = "Bearer " .. (os.getenv("CRIER_KEY") or "") }
function request()
  headers["X-Request-Id"] = track_request()
  return wrk.format("GET", path, headers)
end
