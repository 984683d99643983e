-- The run under (id, token) succeeded. ARGV: base, id, token. Returns 1, or 0 when stale.
local id, token = ARGV[2], ARGV[3]
local job = redis.call('HMGET', job_key(id), 'state', 'token', 'entry', 'priority', 'unique_key')
if not fenced(job[1], job[2], token) then return 0 end
leave_running(id, job[4], job[3])
finish(id, 'completed', now_us(), job[5])
count('running', 'completed')
return 1
