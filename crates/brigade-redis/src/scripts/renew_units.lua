-- Extends the units a run holds, when it still holds them (a heartbeat renewed its lease).
-- KEYS: the holders sorted set. ARGV: holder, lease_us. Returns 1 when renewed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZADD', KEYS[1], 'XX', 'CH', string.format('%.0f', now + tonumber(ARGV[2])),
  ARGV[1])
