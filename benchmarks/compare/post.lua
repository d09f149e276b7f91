-- wrk script: POST the body in $BENCH_BODY (with $BENCH_AUTH as the bearer key, if set)
-- and print one JSON line of figures at the end, for benchmarks/compare to read.
-- A body holding __N__ is sent with a new number each request ($BENCH_RUN-1, -2, …):
-- a fresh message every time, as users send.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. auth
end

local run = os.getenv("BENCH_RUN") or "0"
local fresh = string.find(wrk.body, "__N__", 1, true) ~= nil
local sent = 0

function request()
   if not fresh then
      return wrk.format()
   end
   sent = sent + 1
   local body = string.gsub(wrk.body, "__N__", run .. "-" .. sent)
   return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
         .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
end
