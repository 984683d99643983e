-- Retention: deletes up to `limit` jobs that finished before now - older_than_us, from the
-- completed-and-cancelled index and, when asked, the dead one.
-- ARGV: base, older_than_us, include_dead (1/0), limit. Returns the deleted ids.
local cutoff = '(' .. fmt(now_us() - tonumber(ARGV[2]))
local limit = tonumber(ARGV[4])
local deleted = {}
local function purge(index)
  local ids = redis.call('ZRANGEBYSCORE', base .. index, '-inf', cutoff, 'LIMIT', 0,
    limit - #deleted)
  for _, id in ipairs(ids) do
    local state = redis.call('HGET', job_key(id), 'state')
    redis.call('DEL', job_key(id))
    redis.call('ZREM', base .. index, id)
    if state then count(state, nil) end
    deleted[#deleted + 1] = id
  end
end
purge('finished')
if ARGV[3] == '1' and #deleted < limit then purge('dead') end
return deleted
