-- Cycles through the request bodies listed in a file; reports latency percentiles as JSON.
-- wrk ... -s bench/wrk.lua URL -- LIST [DELAY_MS]
local bodies = {}
local n = 0
local pause = 0

function init(args)
  for path in io.open(args[1]):read("*a"):gmatch("[^\n]+") do
    local file = io.open(path, "rb")
    bodies[#bodies + 1] = file:read("*a")
    file:close()
  end
  pause = tonumber(args[2] or "0")
  n = math.random(#bodies)
end

function request()
  n = n % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[n])
end

function delay()
  return pause
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
