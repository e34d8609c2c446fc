-- GET $BENCH_PATH from crier with a key (env CRIER_KEY), e.g. /v1/messages/msg_…,
-- /v1/messages?limit=50 or /v1/billing. Reports through common.lua.
-- BENCH_UNIQUE_PAGES=1 (for a path with a query string): each request adds a `created_to` of
-- its own, far in the future, so it lists the same messages but no two requests are the same
-- page, and none can be answered with a page crier kept (`db::remembered`): every page is
-- read and written anew.
dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")
local path = os.getenv("BENCH_PATH") or "/readyz"
local unique = os.getenv("BENCH_UNIQUE_PAGES") == "1"
local headers = { ["Authorization"] = "Bearer " .. (os.getenv("CRIER_KEY") or "") }
-- 2100-01-01T00:00:00Z
local FAR_FUTURE = 4102444800
function request()
  headers["X-Request-Id"] = track_request()
  local target = path
  if unique then
    local n = tid * 100000000 + seq
    target = string.format("%s&created_to=%s.%03dZ", path,
      os.date("!%Y-%m-%dT%H:%M:%S", FAR_FUTURE + math.floor(n / 1000)), n % 1000)
  end
  return wrk.format("GET", target, headers)
end
