-- Cancels a waiting or running job; a running job's lease is revoked (its token no longer
-- passes the fencing check). ARGV: base, id. Returns 1, or 0 when it had already ended.
local id = ARGV[2]
local job = redis.call('HMGET', job_key(id), 'state', 'entry', 'priority', 'unique_key')
if job[1] == 'available' then
  redis.call('ZREM', base .. 'delayed', id)
  redis.call('ZREM', returned_key(job[3]), returned_member(id))
  drop_entry(id, job[3], job[2])
elseif job[1] == 'running' then
  leave_running(id, job[3], job[2])
else
  return 0
end
finish(id, 'cancelled', now_us(), job[4])
count(job[1], 'cancelled')
return 1
