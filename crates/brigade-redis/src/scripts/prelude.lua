-- Prepended to every script of a queue. ARGV[1] is the queue's key base, `<prefix>:{<queue>}:`;
-- every key a script touches starts with it, so all of them hash to the queue's slot (the
-- job hashes are named from ids read inside the script, which Redis Cluster allows for
-- keys of the script's own slot).
local base = ARGV[1]
local GROUP = 'workers'

-- Lua numbers are doubles and Redis would print them with 14 digits: microsecond
-- timestamps need all 16, so every number written back goes through here.
local function fmt(n)
  return string.format('%.0f', n)
end

-- The server's clock in microseconds: every host agrees on it, whatever their own clocks say.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Tells every store's subscriber that a job of this queue may be claimable: the channel is
-- `<prefix>:wakeups`, the message the queue's name (both read back from the base).
local function wake()
  local prefix, queue = string.match(base, '^(.-):{(.*)}:$')
  redis.call('PUBLISH', prefix .. ':wakeups', queue)
end

local function job_key(id)
  return base .. 'job:' .. id
end

local function stream_key(priority)
  return base .. 'ready:' .. priority
end

-- Moves one job between the per-state counters behind `counts` and the depth cap.
local function count(from, to)
  if from then redis.call('HINCRBY', base .. 'counts', from, -1) end
  if to then redis.call('HINCRBY', base .. 'counts', to, 1) end
end

-- Appends the job to its priority's stream (creating the stream and its consumer group on
-- first use) and remembers the entry, so the run's end can acknowledge and delete it.
local function make_ready(id, priority)
  local stream = stream_key(priority)
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
  end
  local entry = redis.call('XADD', stream, '*', 'id', id)
  redis.call('ZADD', base .. 'levels', priority, priority)
  redis.call('SADD', base .. 'streams', priority)
  redis.call('HSET', job_key(id), 'entry', entry)
end

-- Acknowledges and deletes the job's stream entry, delivered or not: the work stream only
-- ever holds waiting and running jobs, so it needs no MAXLEN trimming (which would delete
-- undelivered jobs).
local function drop_entry(id, priority, entry)
  if entry then
    local stream = stream_key(priority)
    redis.call('XACK', stream, GROUP, entry)
    redis.call('XDEL', stream, entry)
    redis.call('HDEL', job_key(id), 'entry')
  end
end

-- A run ends: its delivery and its lease go.
local function leave_running(id, priority, entry)
  drop_entry(id, priority, entry)
  redis.call('ZREM', base .. 'leases', id)
end

-- A live job's unique key is free again once the job ends.
local function free_unique(id, unique_key)
  if unique_key and redis.call('HGET', base .. 'unique', unique_key) == id then
    redis.call('HDEL', base .. 'unique', unique_key)
  end
end

-- The job reaches a terminal state at `now`: indexed by finish time for listing and
-- retention (dead jobs apart, since retention keeps them unless asked).
local function finish(id, state, now, unique_key)
  redis.call('HSET', job_key(id), 'state', state, 'finished_at', fmt(now))
  if state == 'dead' then
    redis.call('ZADD', base .. 'dead', fmt(now), id)
  else
    redis.call('ZADD', base .. 'finished', fmt(now), id)
  end
  free_unique(id, unique_key)
end

-- The fencing check: the job is running under exactly this token. A plain XACK would
-- succeed from any consumer; this is what stops a zombie from ending a run it lost.
local function fenced(state, current, token)
  return state == 'running' and current == token
end

-- The run under (id, token) succeeded: 1, or 0 when the token is not current.
local function complete_one(id, token, now)
  local job = redis.call('HMGET', job_key(id), 'state', 'token', 'entry', 'priority',
    'unique_key')
  if not fenced(job[1], job[2], token) then return 0 end
  leave_running(id, job[4], job[3])
  finish(id, 'completed', now, job[5])
  count('running', 'completed')
  return 1
end

-- Makes a dead job available again with its attempts reset, unless a live job holds its
-- unique key. Returns 1 when replayed.
local function replay_one(id)
  local key = job_key(id)
  local job = redis.call('HMGET', key, 'state', 'unique_key', 'priority')
  if job[1] ~= 'dead' then return 0 end
  if job[2] then
    if redis.call('HEXISTS', base .. 'unique', job[2]) == 1 then return 0 end
    redis.call('HSET', base .. 'unique', job[2], id)
  end
  redis.call('HSET', key, 'state', 'available', 'attempt', '0', 'run_at', fmt(now_us()))
  redis.call('HDEL', key, 'finished_at')
  redis.call('ZREM', base .. 'dead', id)
  make_ready(id, job[3])
  count('dead', 'available')
  return 1
end
