-- Extends the leases still held. ARGV: base, lease_us, then id, token pairs.
-- Returns the ids whose lease was extended; any other lease is lost.
local expires = fmt(now_us() + tonumber(ARGV[2]))
local renewed = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local job = redis.call('HMGET', job_key(id), 'state', 'token', 'entry', 'priority', 'owner')
  if fenced(job[1], job[2], token) then
    redis.call('ZADD', base .. 'leases', 'XX', expires, id)
    -- Resets the pending entry's idle time too, so XPENDING shows live runs as fresh.
    if job[3] then
      redis.call('XCLAIM', stream_key(job[4]), GROUP, job[5], 0, job[3], 'JUSTID')
    end
    renewed[#renewed + 1] = id
  end
end
return renewed
