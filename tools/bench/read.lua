-- wrk -s read.lua URL -- MODE REPOS TAGS PREFIX
--   MODE: head | get (manifest by tag) | tags (tags list) | blob (GET /v2/PREFIX/blobs/<digest>
--         for the digests listed one per line in the file named by REPOS)
-- Each request picks a repository and tag at random (seeded per thread).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local counter = 0
local threads = {}
function setup(thread)
        counter = counter + 1
        thread:set("tid", counter)
        table.insert(threads, thread)
end

local mode, repos, tags, prefix, blobs
local accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " ..
        "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

function init(args)
        mode = args[1] or "head"
        prefix = args[4] or "bench/r"
        math.randomseed(1234 + (tid or 0))
        if mode == "blob" then
                blobs = {}
                for line in io.lines(args[2]) do table.insert(blobs, line) end
        else
                repos = tonumber(args[2] or "1000")
                tags = tonumber(args[3] or "10")
        end
end

function request()
        if mode == "blob" then
                return wrk.format("GET", "/v2/" .. prefix .. "/blobs/" .. blobs[math.random(#blobs)])
        end
        local repo = string.format("%s%04d", prefix, math.random(repos) - 1)
        if mode == "tags" then
                return wrk.format("GET", "/v2/" .. repo .. "/tags/list")
        end
        local path = "/v2/" .. repo .. "/manifests/t" .. (math.random(tags) - 1)
        return wrk.format(mode == "head" and "HEAD" or "GET", path, { ["Accept"] = accept })
end

function done(summary, latency, requests)
        report.done(summary, latency)
end
