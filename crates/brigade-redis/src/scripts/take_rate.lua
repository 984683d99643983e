-- GCRA on the server's clock, as the PostgreSQL store's take_rate: grants up to `want`
-- starts, or none with the wait until the next one.
-- KEYS: the limit's theoretical arrival time (microseconds). ARGV: interval_us, burst, want.
-- Returns {granted, retry_after_us}.
local interval, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local base = math.max(tat, now)
-- Start i (from 1) fits while base + (i - 1) * interval <= now + (burst - 1) * interval.
local slack = now + (burst - 1) * interval - base
if slack < 0 then
  return {0, -slack}
end
local granted = math.min(want, math.floor(slack / interval) + 1)
local new_tat = base + granted * interval
-- Once the arrival time has passed the key means nothing (base would be now): let it go.
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {granted, 0}
