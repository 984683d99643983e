-- Gives the job back unrun: claimable at once, in its place, its attempt uncharged.
-- ARGV: base, id, token. Returns 1, or 0 when stale.
local id, token = ARGV[2], ARGV[3]
local key = job_key(id)
local job = redis.call('HMGET', key, 'state', 'token', 'entry', 'priority', 'attempt')
if not fenced(job[1], job[2], token) then return 0 end
redis.call('ZREM', base .. 'leases', id)
local attempt = math.max(tonumber(job[5]) - 1, 0)
redis.call('HSET', key, 'state', 'available', 'attempt', fmt(attempt))
make_returned(id, job[4], job[3])
count('running', 'available')
wake()
return 1
