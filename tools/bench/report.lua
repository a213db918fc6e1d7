-- Shared by the wrk scripts: prints one JSON line with throughput, latency percentiles
-- and error counts (wrk's own summary is still printed above it).
local M = {}
function M.done(summary, latency, extra)
        local secs = summary.duration / 1e6
        local e = summary.errors
        local s = string.format('{"requests":%d,"seconds":%.3f,"rps":%.1f,"bytes":%d,"MBps":%.1f,' ..
                '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
                '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
                summary.requests, secs, summary.requests / secs, summary.bytes, summary.bytes / secs / 1e6,
                latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
                latency.max / 1e3, e.connect, e.read, e.write, e.status, e.timeout)
        if extra then s = s .. "," .. extra end
        io.write("BENCH_JSON " .. s .. "}\n")
end
return M
