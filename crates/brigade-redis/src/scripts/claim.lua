-- Leases up to `limit` due jobs, highest priority first.
-- ARGV: base, worker (the consumer name), limit, lease_us.
-- Returns per claim {id, token, payload, attempt, max_attempts, priority, enqueued_at_us}.
local worker, limit, lease_us = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_us()

-- The promoter: scheduled and retrying jobs whose time has come join their priority's
-- stream, oldest first. Idempotent (each is removed from the set as it moves), so every
-- claimer runs it.
local due = redis.call('ZRANGEBYSCORE', base .. 'delayed', '-inf', fmt(now), 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', base .. 'delayed', id)
  local priority = redis.call('HGET', job_key(id), 'priority')
  if priority then make_ready(id, priority) end
end

-- One stream per priority level, read highest level first: a single stream delivers in
-- arrival order only.
local claims = {}
local levels = redis.call('ZREVRANGE', base .. 'levels', 0, -1)
local expires = fmt(now + lease_us)
for _, priority in ipairs(levels) do
  local stream = stream_key(priority)
  while #claims < limit do
    local read = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', limit - #claims,
      'STREAMS', stream, '>')
    if not read then
      -- Nothing undelivered at this level: it leaves the index until a job joins it again.
      redis.call('ZREM', base .. 'levels', priority)
      break
    end
    for _, entry in ipairs(read[1][2]) do
      local entry_id, id = entry[1], entry[2][2]
      local key = job_key(id)
      local job = redis.call('HMGET', key, 'state', 'entry', 'attempt', 'max_attempts',
        'payload', 'enqueued_at')
      if job[1] == 'available' and job[2] == entry_id then
        -- Attempts are counted here, not taken from the delivery count: a release gives
        -- its attempt back and a replay starts over, which a delivery count cannot do.
        local attempt = tonumber(job[3]) + 1
        local token = redis.call('INCR', base .. 'tokens')
        redis.call('HSET', key, 'state', 'running', 'attempt', fmt(attempt),
          'token', fmt(token), 'owner', worker)
        redis.call('ZADD', base .. 'leases', expires, id)
        count('available', 'running')
        claims[#claims + 1] = {tonumber(id), token, job[5], attempt, tonumber(job[4]),
          tonumber(priority), job[6]}
      else
        -- An entry no job waits on any more: drop it.
        redis.call('XACK', stream, GROUP, entry_id)
        redis.call('XDEL', stream, entry_id)
      end
    end
  end
  if #claims >= limit then break end
end
return claims
