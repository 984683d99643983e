-- Ends the runs whose lease expired: the expired run counts as an attempt, so a job whose
-- run was its last is dead and the others are ready again. ARGV: base.
-- Returns {requeued, dead}.
local now = now_us()
local expired = redis.call('ZRANGEBYSCORE', base .. 'leases', '-inf', '(' .. fmt(now),
  'LIMIT', 0, 1000)
local requeued, dead = 0, 0
for _, id in ipairs(expired) do
  local key = job_key(id)
  -- A key another client overwrote with another type is no job to rescue: it leaves
  -- `leases` rather than failing every rescue of the queue from here on.
  local job = redis.pcall('HMGET', key, 'state', 'entry', 'priority', 'attempt',
    'max_attempts', 'owner', 'unique_key')
  if job.err then job = {} end
  redis.call('ZREM', base .. 'leases', id)
  if job[1] == 'running' then
    redis.call('HSET', key, 'last_error',
      'lease expired: ' .. (job[6] or 'its worker') .. ' stopped renewing it')
    -- Attempts that cannot be read end the job: it was leased, so its lease is gone,
    -- and a script error here would leave it running outside `leases`.
    if (tonumber(job[4]) or 0) >= (tonumber(job[5]) or 0) then
      drop_entry(id, job[3], job[2])
      finish(id, 'dead', now, job[7])
      count('running', 'dead')
      dead = dead + 1
    else
      -- Back in its place, not behind the backlog that queued up while it ran.
      redis.call('HSET', key, 'state', 'available')
      make_returned(id, job[3], job[2])
      count('running', 'available')
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then wake() end

-- Once a minute, the consumer group forgets consumers (worker ids) that hold nothing and
-- have not read for an hour: every worker process adds one, and restarts would pile them
-- up. A consumer deleted while still alive is recreated by its next read.
if redis.call('SET', base .. 'tidied', '1', 'NX', 'PX', 60000) then
  for _, priority in ipairs(redis.call('SMEMBERS', base .. 'streams')) do
    local stream = stream_key(priority)
    if redis.call('EXISTS', stream) == 1 then
      for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', stream, GROUP)) do
        local info = {}
        for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
        if tonumber(info['pending']) == 0 and tonumber(info['idle']) > 3600000 then
          redis.call('XGROUP', 'DELCONSUMER', stream, GROUP, info['name'])
        end
      end
    end
  end
end
return {requeued, dead}
