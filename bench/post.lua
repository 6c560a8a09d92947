-- wrk script: POST one recorded AdmissionReview, like kube-apiserver does.
-- Environment (set by bench/bench.py):
--   BENCH_BODY      file with the AdmissionReview JSON body
--   BENCH_PATH      request path, e.g. /validate?timeout=5s
--   BENCH_RESPONSE  floor response name (header X-Bench-Response; netguard ignores it)
--   BENCH_CLOSE=1   add "Connection: close": a new TCP + TLS connection per request
-- At the end prints one line "BENCH_JSON {...}" with exact counts and latency percentiles (us).

local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/validate"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, */*"
wrk.headers["X-Bench-Response"] = os.getenv("BENCH_RESPONSE") or ""
if os.getenv("BENCH_CLOSE") == "1" then
   wrk.headers["Connection"] = "close"
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"lat_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end
