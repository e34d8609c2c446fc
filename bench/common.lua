-- Shared by bench/send.lua and bench/get.lua (loaded with dofile from $BENCH_DIR).
--
-- wrk's own statistics only know requests that were answered, and its latency histogram drops a
-- request slower than --timeout (it counts it as a "timeout" error instead). A connection that
-- never gets an answer — say, one a server left unserved from the initial burst of connections —
-- therefore shows up nowhere but in a lower rate. So each request here carries an X-Request-Id
-- (crier echoes a valid one), the thread remembers when it sent it, and response() matches the
-- echo. At the end, done() reports:
--   * the wait for each connection's first response (the first CONNS_PER_THREAD requests of a
--     thread are its connections' first requests: wrk opens them all at start and writes one
--     request on each before any answer can arrive), and how many waited more than 100 ms;
--   * requests still unanswered when the run stopped and the age of the oldest of them (at the
--     thread's last response), so a connection stuck for the whole run is visible.
-- If the server does not echo X-Request-Id, these figures come out null (unknown), never zero.
--
-- Output: one line `RESULT {json}` with wrk's figures (the same fields as the limits probe's
-- report.lua) plus these. Environment: BENCH, VARIANT (labels), BENCH_CONNS_PER_THREAD.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } crier_bench_timespec;
int clock_gettime(int clock_id, crier_bench_timespec *tp);
unsigned long pthread_self(void);
]]
-- wrk builds each thread's Lua state, and calls request() once on the first one to check the
-- script ("script_verify_request"), on its main OS thread; that request is never sent. Requests
-- built on the thread that loaded this file are that check, and are not tracked.
local loader_thread = ffi.C.pthread_self()
local timespec = ffi.new("crier_bench_timespec")
local CLOCK_MONOTONIC = 1
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + math.floor(tonumber(timespec.tv_nsec) / 1000)
end

local SLOW_FIRST_US = 100000
local per_thread = tonumber(os.getenv("BENCH_CONNS_PER_THREAD") or "0")

-- Per-thread state. Globals, so that done() can read them with thread:get().
tid = 0
seq = 0
pending = {}       -- X-Request-Id -> µs sent, until its response arrives
firsts = {}        -- X-Request-Id -> true, for first requests not yet answered
first_answered = 0
first_max_us = 0
first_slow = 0
matched = 0
unmatched = 0
last_response_us = 0
statuses = {}      -- status code -> count

local threads = {}
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end

-- Call once per request; returns the X-Request-Id to send with it.
function track_request()
  if ffi.C.pthread_self() == loader_thread then
    return "bench-verify"
  end
  seq = seq + 1
  local id = "bench-" .. tid .. "-" .. seq
  pending[id] = now_us()
  if seq <= per_thread then
    firsts[id] = true
  end
  return id
end

function response(status, headers, body)
  local now = now_us()
  last_response_us = now
  statuses[status] = (statuses[status] or 0) + 1
  local id = headers["X-Request-Id"] or headers["x-request-id"]
  local sent = id and pending[id]
  if not sent then
    unmatched = unmatched + 1
    return
  end
  matched = matched + 1
  pending[id] = nil
  if firsts[id] then
    firsts[id] = nil
    local wait = now - sent
    first_answered = first_answered + 1
    if wait > first_max_us then first_max_us = wait end
    if wait > SLOW_FIRST_US then first_slow = first_slow + 1 end
  end
end

local function json_or_null(known, value)
  if known then return string.format("%d", value) end
  return "null"
end

function done(summary, latency, requests)
  local now = now_us()
  local n_matched, n_unmatched, n_first_answered, n_first_slow = 0, 0, 0, 0
  local max_first, n_pending, oldest, unanswered_first = 0, 0, 0, 0
  local status_counts = {}
  for _, thread in ipairs(threads) do
    n_matched = n_matched + thread:get("matched")
    n_unmatched = n_unmatched + thread:get("unmatched")
    n_first_answered = n_first_answered + thread:get("first_answered")
    n_first_slow = n_first_slow + thread:get("first_slow")
    max_first = math.max(max_first, thread:get("first_max_us"))
    local thread_pending = thread:get("pending")
    local thread_firsts = thread:get("firsts")
    -- Ages are taken at the thread's last response, close to when it stopped: done() runs up to
    -- ~100 ms later (wrk threads stop on their next 100 ms tick), which would age requests that
    -- were merely in flight. A thread that got no response at all is measured at done().
    local stopped = thread:get("last_response_us")
    if stopped == 0 then stopped = now end
    for id, sent in pairs(thread_pending) do
      local age = math.max(0, stopped - sent)
      n_pending = n_pending + 1
      oldest = math.max(oldest, age)
      if thread_firsts[id] then
        -- A connection whose first request was still unanswered at the end.
        unanswered_first = unanswered_first + 1
        max_first = math.max(max_first, age)
        if age > SLOW_FIRST_US then n_first_slow = n_first_slow + 1 end
      end
    end
    for status, count in pairs(thread:get("statuses")) do
      status_counts[status] = (status_counts[status] or 0) + count
    end
  end
  local parts, non_2xx = {}, 0
  for status, count in pairs(status_counts) do
    table.insert(parts, string.format('"%d":%d', status, count))
    if status < 200 or status > 299 then non_2xx = non_2xx + count end
  end
  table.sort(parts)
  -- Echo works if some responses matched and none failed to (a server that drops the header
  -- makes every response unmatched).
  local known = n_matched > 0 and n_unmatched == 0
  local e = summary.errors
  io.write(string.format(
    'RESULT {"bench":"%s","variant":"%s","requests":%d,"secs":%.3f,"rps":%.1f,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"non_2xx":%d,' ..
    '"statuses":{%s},"non_2xx_seen":%d,"echo_matched":%d,"echo_unmatched":%d,' ..
    '"conns":%d,"first_answered":%s,"first_max_us":%s,"first_over_100ms":%s,' ..
    '"pending_at_end":%s,"unanswered_first":%s,"oldest_pending_us":%s}\n',
    os.getenv("BENCH") or "wrk", os.getenv("VARIANT") or "",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ","), non_2xx, n_matched, n_unmatched,
    per_thread * nthreads,
    json_or_null(known, n_first_answered), json_or_null(known, max_first),
    json_or_null(known, n_first_slow), json_or_null(known, n_pending),
    json_or_null(known, unanswered_first), json_or_null(known, oldest)))
end
