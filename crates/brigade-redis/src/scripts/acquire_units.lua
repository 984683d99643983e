-- Takes `weight` units of a global concurrency limit for one run, if they are free.
-- KEYS: the holders (sorted set, scored by lease expiry in microseconds), their weights
-- (hash). ARGV: capacity, holder ('<id>:<token>'), weight, lease_us. Returns 1 or 0.
local capacity, holder, weight = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Holders whose lease passed without a heartbeat give their units back first.
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.0f', now))
for _, gone in ipairs(expired) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('HDEL', KEYS[2], gone)
end
if redis.call('ZSCORE', KEYS[1], holder) then
  return 1
end
local used = 0
for _, held in ipairs(redis.call('HVALS', KEYS[2])) do
  used = used + tonumber(held)
end
if used + weight > capacity then
  return 0
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[4])), holder)
redis.call('HSET', KEYS[2], holder, ARGV[3])
return 1
