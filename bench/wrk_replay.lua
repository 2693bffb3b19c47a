-- wrk script: replay pre-built raw HTTP requests, each sent exactly once (driven by bench/wrk.py).
--
-- $BENCH_WRK_DIR holds requests-<i>.bin for wrk thread i: records "<byte length>\n<raw request>".
-- Each thread sends its own list in order, one request per request() call (a dynamic request()
-- turns wrk's pipelining off). When a thread's list is exhausted request() returns "", an empty
-- write after which the connection just waits; when the thread has all its responses it calls
-- wrk.thread:stop(). Progress goes to progress-<i> (atomic rename) so bench/wrk.py can SIGINT wrk
-- (ending its -d sleep) as soon as every thread is done, or when progress stalls.
-- wrk calls request() once on its main thread to check the syntax (script_verify_request): that
-- call is recognised by pthread_self() and consumes nothing.
-- done() writes summary.json: per-thread statuses and timestamps (CLOCK_MONOTONIC), wrk's errors
-- and the latency histogram (value in us, count), which bench/wrk.py turns into percentiles.

local ffi = require("ffi")
ffi.cdef [[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct bench_timespec *tp);
unsigned long pthread_self(void);
]]

local clock = ffi.new("struct bench_timespec")
local function now()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC: comparable across threads
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local function os_thread()
  return tostring(ffi.C.pthread_self())
end

local dir = assert(os.getenv("BENCH_WRK_DIR"), "BENCH_WRK_DIR is not set")

-- main Lua state -------------------------------------------------------------------------------
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  thread:set("main_os_thread", os_thread())
  threads[#threads + 1] = thread
end

-- per-thread Lua states ------------------------------------------------------------------------
local requests, next_request = {}, 1
total, sent, received, statuses = 0, 0, 0, {}
first_at, last_at = 0, 0

local function report_progress()
  local path = dir .. "/progress-" .. thread_index
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(received, " ", total, "\n")
  f:close()
  os.rename(path .. ".tmp", path)
end

function init(args)
  local f = assert(io.open(dir .. "/requests-" .. thread_index .. ".bin", "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local newline = assert(data:find("\n", pos, true), "bad requests file")
    local length = tonumber(data:sub(pos, newline - 1))
    requests[#requests + 1] = data:sub(newline + 1, newline + length)
    pos = newline + length + 1
  end
  total = #requests
  report_progress()
end

function request()
  if os_thread() == main_os_thread then
    return requests[1] -- wrk's syntax check, never sent
  end
  local raw = requests[next_request]
  if raw == nil then
    return "" -- exhausted: nothing more to send on this connection
  end
  if next_request == 1 then
    first_at = now()
  end
  requests[next_request] = nil
  next_request = next_request + 1
  sent = sent + 1
  return raw
end

function response(status, headers, body)
  received = received + 1
  last_at = now()
  statuses[status] = (statuses[status] or 0) + 1
  if received >= total then
    report_progress()
    wrk.thread:stop()
  elseif received % 256 == 0 then
    report_progress()
  end
end

-- main Lua state, after the run ----------------------------------------------------------------
function done(summary, latency, _)
  local parts = {}
  local function add(s)
    parts[#parts + 1] = s
  end
  add(string.format('{"duration_us": %d, "requests": %d, "bytes": %d, "errors": {', summary.duration,
    summary.requests, summary.bytes))
  local e = summary.errors
  add(string.format('"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
    e.connect, e.read, e.write, e.status, e.timeout))
  add(string.format(', "wrk_p50_us": %d, "wrk_p99_us": %d, "threads": [',
    latency:percentile(50), latency:percentile(99)))
  for i, t in ipairs(threads) do
    local codes = {}
    for code, count in pairs(t:get("statuses") or {}) do
      codes[#codes + 1] = string.format('"%d": %d', code, count)
    end
    add(string.format('%s{"total": %d, "sent": %d, "received": %d, "first_at": %.6f, "last_at": %.6f, '
      .. '"statuses": {%s}}', i > 1 and ", " or "", t:get("total"), t:get("sent"), t:get("received"),
      t:get("first_at"), t:get("last_at"), table.concat(codes, ", ")))
  end
  add('], "histogram": [')
  for i = 1, #latency do
    local value, count = latency(i)
    add(string.format('%s[%d, %d]', i > 1 and ", " or "", value, count))
  end
  add("]}\n")
  local f = assert(io.open(dir .. "/summary.json", "w"))
  f:write(table.concat(parts))
  f:close()
end
