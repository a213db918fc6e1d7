-- wrk -s handshake.lua URL: GET /v2/ with "Connection: close", so that every request is a new
-- connection (and, on https://, a new TLS handshake).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local report = require("report")

function request()
        return wrk.format("GET", "/v2/", { ["Connection"] = "close" })
end

function done(summary, latency, requests)
        report.done(summary, latency)
end
