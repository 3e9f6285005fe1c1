-- wrk script for benches/http_ingest.sh: each request POSTs BATCH
-- positions (one per device, DEVICES registered devices in turn) to
-- /api/v1/ingest/positions with the ingest key KEY. Fix times advance 2 ms
-- per request and differ between wrk's two threads, so no position repeats
-- one already sent; they start 20 h in the past (the gateway refuses fixes
-- more than 25 h ahead of receipt).
local batch = tonumber(os.getenv("BATCH"))
local devices = tonumber(os.getenv("DEVICES"))
local key = os.getenv("KEY")
local start_ms = (os.time() - 20 * 3600) * 1000
local threads = 0
local counter = 0
local next_device = 0
local failed = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

request = function()
  counter = counter + 1
  local t = start_ms + counter * 2 + tid
  local ts = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t / 1000)) .. string.format(".%03dZ", t % 1000)
  local parts = {}
  for i = 1, batch do
    local dev = string.format("8600%011d", next_device)
    next_device = (next_device + 1) % devices
    parts[i] = string.format('{"device_id":"%s","fix_time":"%s","lat":%.6f,"lon":%.6f,"speed_kmh":62,"course_deg":90}',
      dev, ts, 50 + next_device / 10000, 8 + counter / 1000000)
  end
  return wrk.format("POST", "/api/v1/ingest/positions",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key },
    "[" .. table.concat(parts, ",") .. "]")
end

response = function(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
    if failed <= 3 then io.stderr:write("HTTP " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
end
