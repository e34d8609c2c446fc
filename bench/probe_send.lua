-- The limits probe's own send.lua (from $WRK_DIR, unchanged), with the bookkeeping of common.lua
-- added, so that wrk spends the same CPU per request on the probe as on crier (bench/send.lua):
-- tracking costs wrk ~6 µs per request, a few per cent of this machine at the probe's rates.
-- The probe does not echo X-Request-Id, so its first-response figures come out null.
dofile((os.getenv("WRK_DIR") or "scripts/wrk") .. "/send.lua")
local limits_request = request
dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")
function request()
  local id = track_request()
  -- wrk.format() output starts with the request line; the header goes right after it.
  return (limits_request():gsub("\r\n", "\r\nX-Request-Id: " .. id .. "\r\n", 1))
end
