-- wrk script for bench/dispatch.sh (queues the messages it then times): POST /v1/messages with a live key (env CRIER_KEY), a unique
-- Idempotency-Key per request, one SMS or one email (env CHANNEL), and exactly QUOTA sends per
-- wrk thread (env QUOTA); after its quota a thread asks for /healthz (no database) until the script stops wrk.
local channel = os.getenv("CHANNEL") or "sms"
local quota = tonumber(os.getenv("QUOTA") or "0")
local body
if channel == "email" then
  body = '{"channel":"email","to":"ada@example.org","subject":"Your verification code",' ..
    '"text":"Your verification code is 482913. It expires in 10 minutes. ' ..
    'If you did not request this code, ignore this message. Thanks!"}'
else
  body = '{"channel":"sms","to":"+237677123456","text":"Your verification code is 482913. ' ..
    'It expires in 10 minutes. If you did not request this code, ignore this message. Thanks!"}'
end
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. (os.getenv("CRIER_KEY") or ""),
}
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end
local issued = 0
local prefix = ""
function init(args)
  prefix = string.format("bench-%d-%d-", os.time(), tid or 0)
end
function request()
  if issued >= quota then
    return wrk.format("GET", "/healthz")
  end
  issued = issued + 1
  headers["Idempotency-Key"] = prefix .. issued
  return wrk.format("POST", "/v1/messages", headers, body)
end
