-- Ends the runs whose lease expired: the expired run counts as an attempt, so a job whose
-- run was its last is dead and the others are ready again. ARGV: base.
-- Returns {requeued, dead}.
local now = now_us()
local expired = redis.call('ZRANGEBYSCORE', base .. 'leases', '-inf', '(' .. fmt(now),
  'LIMIT', 0, 1000)
local requeued, dead = 0, 0
for _, id in ipairs(expired) do
  local key = job_key(id)
  local job = redis.call('HMGET', key, 'state', 'entry', 'priority', 'attempt',
    'max_attempts', 'owner', 'unique_key')
  redis.call('ZREM', base .. 'leases', id)
  if job[1] == 'running' then
    drop_entry(id, job[3], job[2])
    redis.call('HSET', key, 'last_error',
      'lease expired: ' .. (job[6] or 'its worker') .. ' stopped renewing it')
    if tonumber(job[4]) >= tonumber(job[5]) then
      finish(id, 'dead', now, job[7])
      count('running', 'dead')
      dead = dead + 1
    else
      redis.call('HSET', key, 'state', 'available')
      make_ready(id, job[3])
      count('running', 'available')
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then wake() end
return {requeued, dead}
