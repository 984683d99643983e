-- Leases up to `limit` due jobs, highest priority first.
-- ARGV: base, worker (the consumer name), limit, lease_us.
-- Returns per claim {id, token, payload, attempt, max_attempts, priority, enqueued_at_us}.
local worker, limit, lease_us = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_us()

-- The promoter: scheduled and retrying jobs whose time has come join their priority's
-- stream, oldest first. Idempotent (each is removed from the set as it moves), so every
-- claimer runs it.
local due = redis.call('ZRANGEBYSCORE', base .. 'delayed', '-inf', fmt(now), 'LIMIT', 0, 1000)
if #due > 0 then
  call_batched('ZREM', base .. 'delayed', {}, due)
  for _, id in ipairs(due) do
    local priority = redis.call('HGET', job_key(id), 'priority')
    if priority then make_ready(id, priority) end
  end
end

-- One stream per priority level, read highest level first: a single stream delivers in
-- arrival order only. Per job one read and one write of its hash; the keys every claim
-- touches (`tokens`, `leases`, `counts`) are written once for the batch.
local claims, leased = {}, {}
local levels = redis.call('ZREVRANGE', base .. 'levels', 0, -1)
local expires = fmt(now + lease_us)
for _, priority in ipairs(levels) do
  local stream = stream_key(priority)
  while #claims < limit do
    local want = limit - #claims
    local read = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', want,
      'STREAMS', stream, '>')
    local delivered = read and read[1][2] or {}
    local fresh, stale = {}, {}
    for _, entry in ipairs(delivered) do
      local entry_id, id = entry[1], entry[2][2]
      local job = redis.call('HMGET', job_key(id), 'state', 'entry', 'attempt',
        'max_attempts', 'payload', 'enqueued_at')
      if job[1] == 'available' and job[2] == entry_id then
        fresh[#fresh + 1] = {id, job}
      else
        -- An entry no job waits on any more: drop it.
        stale[#stale + 1] = entry_id
      end
    end
    if #fresh > 0 then
      local last = redis.call('INCRBY', base .. 'tokens', #fresh)
      for i, claim in ipairs(fresh) do
        local id, job = claim[1], claim[2]
        -- Attempts are counted here, not taken from the delivery count: a release gives
        -- its attempt back and a replay starts over, which a delivery count cannot do.
        local attempt = tonumber(job[3]) + 1
        local token = last - #fresh + i
        redis.call('HSET', job_key(id), 'state', 'running', 'attempt', fmt(attempt),
          'token', fmt(token), 'owner', worker)
        leased[#leased + 1] = expires
        leased[#leased + 1] = id
        claims[#claims + 1] = {tonumber(id), token, job[5], attempt, tonumber(job[4]),
          tonumber(priority), job[6]}
      end
    end
    if #stale > 0 then
      call_batched('XACK', stream, {GROUP}, stale)
      call_batched('XDEL', stream, {}, stale)
    end
    if #delivered < want then
      -- Nothing undelivered is left at this level: it leaves the index until a job joins
      -- it again.
      redis.call('ZREM', base .. 'levels', priority)
      break
    end
  end
  if #claims >= limit then break end
end
if #leased > 0 then
  call_batched('ZADD', base .. 'leases', {}, leased)
  count_many('available', 'running', #claims)
end
return claims
