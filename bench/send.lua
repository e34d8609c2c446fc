-- POST /v1/messages to crier: a live key (env CRIER_KEY), a unique Idempotency-Key per request and
-- a one-segment GSM-7 SMS with metadata — the same body as shared/perf/crier_send.lua, about the
-- size of the limits probe's send.lua. Reports through common.lua (first-response waits included).
dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")
local body = '{"channel":"sms","to":"+237677123456","text":"Your verification code is 482913. ' ..
  'It expires in 10 minutes. If you did not request this code, ignore this message. Thanks!",' ..
  '"metadata":{"customer_ref":"ord_000123456789","campaign":"otp"}}'
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. (os.getenv("CRIER_KEY") or ""),
}
local prefix = ""
function init(args)
  prefix = string.format("%d-%d-%d-", os.time(), tid, math.floor(os.clock() * 1e6))
end
function request()
  local id = track_request()
  headers["Idempotency-Key"] = prefix .. seq
  headers["X-Request-Id"] = id
  return wrk.format("POST", "/v1/messages", headers, body)
end
