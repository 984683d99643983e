-- Retention: deletes up to `limit` jobs that finished before now - older_than_us: from the
-- head of `finished` (completed and cancelled jobs in finish order) and, when asked, from
-- the dead index. Each job's own finish time decides: the walk along `finished` stops at
-- the first job too young to go, so a step back of the server's clock can only keep jobs
-- longer, never delete one early.
-- ARGV: base, older_than_us, include_dead (1/0), limit. Returns the deleted ids.
local cutoff = now_us() - tonumber(ARGV[2])
local limit = tonumber(ARGV[4])
local deleted = {}

-- Deletes the hashes of `ids` and moves them out of the per-state counters.
local function delete_jobs(ids)
  if #ids == 0 then return end
  local keys, by_state = {}, {}
  for _, id in ipairs(ids) do
    local state = redis.call('HGET', job_key(id), 'state')
    if state then by_state[state] = (by_state[state] or 0) + 1 end
    keys[#keys + 1] = job_key(id)
    deleted[#deleted + 1] = id
  end
  for first = 1, #keys, 2000 do
    redis.call('DEL', unpack(keys, first, math.min(first + 1999, #keys)))
  end
  for state, n in pairs(by_state) do count_many(state, nil, n) end
end

local head = redis.call('LRANGE', base .. 'finished', 0, limit - 1)
local old = {}
for _, id in ipairs(head) do
  local finished_at = redis.call('HGET', job_key(id), 'finished_at')
  if finished_at and tonumber(finished_at) >= cutoff then break end
  old[#old + 1] = id
end
if #old > 0 then
  redis.call('LTRIM', base .. 'finished', #old, -1)
  delete_jobs(old)
end

if ARGV[3] == '1' and #deleted < limit then
  local dead = redis.call('ZRANGEBYSCORE', base .. 'dead', '-inf', '(' .. fmt(cutoff), 'LIMIT',
    0, limit - #deleted)
  if #dead > 0 then
    call_batched('ZREM', base .. 'dead', {}, dead)
    delete_jobs(dead)
  end
end
return deleted
