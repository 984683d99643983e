-- Extends the units of runs that still hold them (a heartbeat renewed their leases): every
-- holder of one limit in one call, however many there are.
-- KEYS: the holders sorted set. ARGV: lease_us, then the holders. Returns how many
-- expiries moved.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local expires = string.format('%.0f', now + tonumber(ARGV[1]))
local renewed = 0
-- XX: a holder whose units already expired (and were handed to another run) stays out.
-- A slice at a time, within Lua's limit on unpacked values.
for first = 2, #ARGV, 1000 do
  local args = {}
  for i = first, math.min(first + 999, #ARGV) do
    args[#args + 1] = expires
    args[#args + 1] = ARGV[i]
  end
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(args))
end
return renewed
