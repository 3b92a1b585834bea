-- wrk script of `make bench`: POSTs complaints (or GETs /healthz) and prints a JSON summary.
--
--   wrk -t2 -c32 -d20s -s tests/bench/wrk_complaint.lua -- post <token> <phase> <template> <api key>
--   wrk -t2 -c32 -d20s -s tests/bench/wrk_complaint.lua -- get
--
-- Each request gets a unique number from the thread id and a per-thread counter: the
-- number goes into the order number, the Idempotency-Key and the X-Correlation-ID.
-- The template is the JSON body written by tests/bench/bodies.py with @N@ (unique number)
-- and @C@ (customer) placeholders.

local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("thread_id", thread_count)
end

function init(args)
   mode = args[1] or "get"
   counter = 0
   if mode == "post" then
      token = args[2]
      phase = args[3]
      local file = assert(io.open(args[4], "rb"))
      template = file:read("*a")
      file:close()
      api_key = args[5]
   end
end

function request()
   if mode ~= "post" then
      return wrk.format("GET", "/healthz")
   end
   counter = counter + 1
   -- Threads never collide: a thread would need a billion requests to reach the next one.
   local n = string.format("%d", thread_id * 1000000000 + counter)
   -- The phase is part of every key: a warm-up run must not make the measured run replay.
   local unique = phase .. "-" .. token .. "-" .. n
   -- A few thousand customers per thread, phase and run: intake caps each one's open
   -- complaints, so runs must not pile onto the same customers.
   local customer = phase .. "-" .. token .. "-" .. thread_id .. "-" .. tostring(counter % 2500)
   local body = template:gsub("@N@", unique):gsub("@C@", customer)
   local headers = {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = "bench-" .. unique,
      ["X-Correlation-ID"] = phase .. "." .. token .. "." .. n,
   }
   if api_key and api_key ~= "" then
      headers["X-API-Key"] = api_key
   end
   return wrk.format("POST", "/v1/complaints", headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_WRK {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
