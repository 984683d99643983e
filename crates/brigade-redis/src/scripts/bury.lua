-- The run under (id, token) failed for good: the job is dead.
-- ARGV: base, id, token, error. Returns 1, or 0 when stale.
local id, token = ARGV[2], ARGV[3]
local key = job_key(id)
local job = redis.call('HMGET', key, 'state', 'token', 'entry', 'priority', 'unique_key')
if not fenced(job[1], job[2], token) then return 0 end
leave_running(id, job[4], job[3])
redis.call('HSET', key, 'last_error', ARGV[4])
finish(id, 'dead', now_us(), job[5])
count('running', 'dead')
return 1
