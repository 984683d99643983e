-- How many jobs of the queue are in each state. ARGV: base.
-- Returns {available, scheduled, running, completed, dead, cancelled}.
local c = redis.call('HMGET', base .. 'counts', 'available', 'running', 'completed', 'dead',
  'cancelled')
local scheduled = redis.call('ZCOUNT', base .. 'delayed', '(' .. fmt(now_us()), '+inf')
local waiting = tonumber(c[1] or '0')
return {waiting - scheduled, scheduled, tonumber(c[2] or '0'), tonumber(c[3] or '0'),
  tonumber(c[4] or '0'), tonumber(c[5] or '0')}
