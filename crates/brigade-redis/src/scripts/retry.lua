-- The run under (id, token) failed; the job runs again after a delay on the server's clock.
-- ARGV: base, id, token, delay_us, error. Returns 1, or 0 when stale.
local id, token = ARGV[2], ARGV[3]
local key = job_key(id)
local job = redis.call('HMGET', key, 'state', 'token', 'entry', 'priority')
if not fenced(job[1], job[2], token) then return 0 end
leave_running(id, job[4], job[3])
local run_at = fmt(now_us() + tonumber(ARGV[4]))
redis.call('HSET', key, 'state', 'available', 'run_at', run_at, 'last_error', ARGV[5])
-- Through the delayed set even with no delay: the promoter moves it on the next claim.
redis.call('ZADD', base .. 'delayed', run_at, id)
count('running', 'available')
return 1
