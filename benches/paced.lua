-- wrk script: each connection waits WRK_DELAY_MS between a response and its
-- next request, so 64 connections offer about 64 / (delay + latency)
-- requests per second (2 ms: ~29k/s here) instead of as many as they can.
local d = tonumber(os.getenv("WRK_DELAY_MS") or "2")
function delay()
  return d
end
