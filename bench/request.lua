-- wrk's script for bench/wrk.py: POSTs the body in $BENCH_BODY, or the bodies of the files
-- $BENCH_BODIES lists (one path a line) in turn; with $BENCH_ONCE, each of those once, then
-- stops. With $BENCH_TOKENS (one JWT per line) each request carries the next token (the service
-- refuses a token twice); with $BENCH_NEW_PATIENT (the body's patient id) each request is for a
-- patient of its own (the id written out as "<id>-<n>" wherever it appears). Writes its figures
-- as JSON to $BENCH_OUT.
local function slurp(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  return data
end

local bodies = {}
if os.getenv("BENCH_BODIES") then
  for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = slurp(line) end
else
  bodies[1] = slurp(os.getenv("BENCH_BODY"))
end
local tokens = {}
if os.getenv("BENCH_TOKENS") then
  for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = "Bearer " .. line end
end
local patient = os.getenv("BENCH_NEW_PATIENT")
local patient_pattern = patient and patient:gsub("%p", "%%%0")
local sent = 0
local headers = { ["Content-Type"] = "application/json" }

request = function()
  sent = sent + 1
  if #tokens > 0 then headers["Authorization"] = tokens[math.min(sent, #tokens)] end
  local body = bodies[(sent - 1) % #bodies + 1]
  if patient then
    return wrk.format("POST", nil, headers, (body:gsub(patient_pattern, patient .. "-" .. sent)))
  end
  return wrk.format("POST", nil, headers, body)
end

if os.getenv("BENCH_ONCE") then
  local answered = 0
  response = function()
    answered = answered + 1
    if answered >= #bodies then
      wrk.thread:stop()
      -- wrk's main thread sleeps out the duration whatever its threads do: this file tells
      -- bench/wrk.py to interrupt it.
      assert(io.open(os.getenv("BENCH_OUT") .. ".answered", "w")):close()
    end
  end
end

done = function(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  out:write(string.format(
    '{"p50_us": %d, "p99_us": %d, "mean_us": %d, "requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d}',
    latency:percentile(50), latency:percentile(99), latency.mean, summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
  out:close()
end
