-- wrk -t N -c N -s small-push.lua URL -- DIR REPO
-- Small-object push rate: each connection (one per thread: use -t N -c N) pushes distinct
-- small blobs with a monolithic upload, POST /v2/REPO<tid>/blobs/uploads/ then
-- PUT <Location>?digest=... with the bytes. DIR/t<tid>.txt holds "digest content" lines
-- (made by gen-small.py). Reports pushes/s (two requests each).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local counter = 0
local threads = {}
function setup(thread)
        counter = counter + 1
        thread:set("tid", counter)
        table.insert(threads, thread)
end

local items = {}
local idx, state, location, repo = 1, "post", nil, nil
pushed, failed = 0, 0

function init(args)
        for line in io.lines(args[1] .. "/t" .. tid .. ".txt") do
                local d, c = line:match("^(%S+) (.*)$")
                table.insert(items, { d, c })
        end
        repo = (args[2] or "bench/small") .. tid
end

function request()
        if state == "post" then
                return wrk.format("POST", "/v2/" .. repo .. "/blobs/uploads/", { ["Content-Length"] = "0" }, "")
        end
        local it = items[idx]
        local sep = location:find("?", 1, true) and "&" or "?"
        return wrk.format("PUT", location .. sep .. "digest=" .. it[1],
                { ["Content-Type"] = "application/octet-stream" }, it[2])
end

function response(status, headers, body)
        if state == "post" then
                if status == 202 then
                        location = headers["Location"] or headers["location"]
                        location = location:gsub("^https?://[^/]+", "")
                        state = "put"
                else
                        failed = failed + 1
                end
        else
                if status == 201 then pushed = pushed + 1 else failed = failed + 1 end
                idx = idx % #items + 1
                state = "post"
        end
end

function done(summary, latency, requests)
        local p, f = 0, 0
        for _, t in ipairs(threads) do
                p = p + t:get("pushed")
                f = f + t:get("failed")
        end
        local secs = summary.duration / 1e6
        report.done(summary, latency, string.format('"pushed":%d,"failed":%d,"pushes_per_s":%.1f', p, f, p / secs))
end
