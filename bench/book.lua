-- wrk script: POST /v1/bookings, each request on its own 30-minute slot.
-- Needs KEY and BUSINESS in the environment; INSTANCE (default 0) keeps several wrk processes
-- run at once (one per node, bench/multinode.sh) on slots of their own.
local key = os.getenv("KEY")
local business = os.getenv("BUSINESS")
local instance = tonumber(os.getenv("INSTANCE") or "0")
-- BUSINESSES (comma-separated), when set, spreads the bookings over those businesses in turn.
local businesses = {}
for id in string.gmatch(os.getenv("BUSINESSES") or "", "[^,]+") do businesses[#businesses + 1] = id end
-- 2035-01-01T00:00:00Z, far from any other data, plus a region of its own for each run (so
-- runs against one database do not collide): 50 regions of 400,000 hours, up to year ~4300.
local base = 2051222400 + (os.time() % 50) * 400000 * 3600
local next_thread = 0

function setup(thread)
  thread:set("tid", instance * 2 + next_thread) -- wrk -t2: two threads per instance
  next_thread = next_thread + 1
end

function init(args)
  n = 0
end

function request()
  n = n + 1
  local start = base + (tonumber(tid) * 100000 + n) * 3600 -- an hour apart: buffers never touch
  local target = business
  if #businesses > 0 then target = businesses[(n + tonumber(tid)) % #businesses + 1] end
  local body = string.format(
    '{"business_id":"%s","customer_email":"c@example.com","customer_name":"Customer","start_time":"%s","end_time":"%s"}',
    target, os.date("!%Y-%m-%dT%H:%M:%SZ", start), os.date("!%Y-%m-%dT%H:%M:%SZ", start + 1800))
  return wrk.format("POST", "/v1/bookings", { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }, body)
end
