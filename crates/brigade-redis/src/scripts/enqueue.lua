-- Adds a batch of jobs to one queue, all or none.
-- ARGV: base, queue, depth cap ('' for none), job count, then per job eight values:
--   id, payload, priority, run_at_us ('' for none), delay_us ('' for none),
--   unique key ('' for none, else '=' .. key), max_attempts, 1 if the cap applies to it.
-- Returns -1 when the depth cap refuses the batch, else per job {id, 1 if added else 0}
-- (0: a live job held its unique key, and id is that job's).
local queue, cap, n = ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = now_us()
local result, fresh_keys, adding = {}, {}, 0
for i = 0, n - 1 do
  local at = 5 + i * 8
  local id, unique_arg = ARGV[at], ARGV[at + 5]
  local existing = false
  if unique_arg ~= '' then
    local unique_key = string.sub(unique_arg, 2)
    existing = fresh_keys[unique_key] or redis.call('HGET', base .. 'unique', unique_key)
    if not existing then fresh_keys[unique_key] = id end
  end
  if existing then
    result[i + 1] = {existing, 0}
  else
    result[i + 1] = {id, 1}
    if ARGV[at + 7] == '1' then adding = adding + 1 end
  end
end

-- The cap counts live jobs (waiting, scheduled or running) and the capped jobs the batch
-- adds: a job whose unique key a live job (or an earlier job of the batch) holds adds
-- none, as on PostgreSQL and SQLite.
if cap ~= '' then
  local live = redis.call('HMGET', base .. 'counts', 'available', 'running')
  if tonumber(live[1] or '0') + tonumber(live[2] or '0') + adding > tonumber(cap) then
    return -1
  end
end

-- Per job one hash write and one stream entry (or `delayed` score); the counters once.
local added = 0
for i = 0, n - 1 do
  if result[i + 1][2] == 1 then
    local at = 5 + i * 8
    local id, payload, priority = ARGV[at], ARGV[at + 1], ARGV[at + 2]
    local run_at = now
    if ARGV[at + 3] ~= '' then
      run_at = tonumber(ARGV[at + 3])
    elseif ARGV[at + 4] ~= '' then
      run_at = now + tonumber(ARGV[at + 4])
    end
    local fields = {'queue', queue, 'payload', payload, 'priority', priority,
      'max_attempts', ARGV[at + 6], 'attempt', '0', 'state', 'available',
      'run_at', fmt(run_at), 'enqueued_at', fmt(now)}
    local unique_arg = ARGV[at + 5]
    if unique_arg ~= '' then
      local unique_key = string.sub(unique_arg, 2)
      fields[#fields + 1] = 'unique_key'
      fields[#fields + 1] = unique_key
      redis.call('HSET', base .. 'unique', unique_key, id)
    end
    if run_at > now then
      redis.call('ZADD', base .. 'delayed', fmt(run_at), id)
    else
      fields[#fields + 1] = 'entry'
      fields[#fields + 1] = append_entry(id, priority)
    end
    redis.call('HSET', job_key(id), unpack(fields))
    added = added + 1
  end
end
count_many(nil, 'available', added)
if added > 0 then wake() end
return result
