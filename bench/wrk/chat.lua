-- wrk script for bench/run: POST /api/chat with a key header.
--   wrk ... -s bench/wrk/chat.lua URL -- KEYS_FILE STREAM_CHUNKS
-- KEYS_FILE: one key a line; the requests go round them, each thread
-- from its own offset (the load of many clients, each with its key).
-- STREAM_CHUNKS: 0 for a non-streaming chat, N for an N-line NDJSON stream
-- (the canned upstream picks its answer by ?chunks=N).
-- done() prints one line, "WRK {json}", that bench/run parses.
local keys = {}
local path, body
local thread_no = 0
local n = 0

function setup(thread)
    thread:set("offset", thread_no * 7)
    thread_no = thread_no + 1
end

function init(args)
    for line in io.lines(args[1]) do
        if #line > 0 then keys[#keys + 1] = line end
    end
    local chunks = tonumber(args[2] or "0")
    if chunks > 0 then
        path = "/api/chat?chunks=" .. chunks
        body = '{"model":"bench","messages":[{"role":"user","content":"Why is the sky blue?"}]}'
    else
        path = "/api/chat"
        body = '{"model":"bench","messages":[{"role":"user","content":"Why is the sky blue?"}],"stream":false}'
    end
    n = tonumber(offset or 0)
end

function request()
    n = n + 1
    local headers = {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. keys[(n % #keys) + 1],
    }
    return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
        '"non2xx":%d,"socket_errors":%d}\n',
        summary.requests, summary.duration, latency:percentile(50),
        latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
