-- wrk -s auth.lua URL -- METHOD PATH [AUTHORIZATION]
-- The same request over and over: METHOD PATH with the Accept of an OCI image manifest and, when
-- AUTHORIZATION is given and not empty, that Authorization header value ("Bearer <token>",
-- "Basic <base64 of user:password>", as curl -u sends it). Used by bench-auth.sh.
-- (wrk 4.1 never completes a HEAD with a Content-Length: bench-auth.sh sends HEADs with loadgen.)
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local req
function init(args)
        local headers = { ["Accept"] = "application/vnd.oci.image.manifest.v1+json" }
        if args[3] and args[3] ~= "" then headers["Authorization"] = args[3] end
        req = wrk.format(args[1] or "GET", args[2], headers)
end

function request()
        return req
end

function done(summary, latency, requests)
        report.done(summary, latency)
end
