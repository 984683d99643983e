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

-- Moves `n` jobs between two states' counters: one write per state for a whole batch.
local function count_many(from, to, n)
  if n > 0 then
    if from then redis.call('HINCRBY', base .. 'counts', from, -n) end
    if to then redis.call('HINCRBY', base .. 'counts', to, n) end
  end
end

-- Runs `command key head... items...` over every item of a batch in as few calls as
-- Lua's limit on unpacked values allows (an even-length `items` stays in pairs).
local function call_batched(command, key, head, items)
  local SLICE = 2000
  for first = 1, #items, SLICE do
    local args = {}
    for _, value in ipairs(head) do args[#args + 1] = value end
    for i = first, math.min(first + SLICE - 1, #items) do args[#args + 1] = items[i] end
    redis.call(command, key, unpack(args))
  end
end

-- The priority levels this script has opened: a batch of one level opens it once. (No
-- script removes a level after opening one.)
local opened_levels = {}

-- Makes sure the priority's stream and consumer group exist and the level is indexed
-- (a claim drops a level once it drains its stream).
local function open_level(priority)
  if opened_levels[priority] then return end
  local stream = stream_key(priority)
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
  end
  redis.call('ZADD', base .. 'levels', priority, priority)
  redis.call('SADD', base .. 'streams', priority)
  opened_levels[priority] = true
end

-- Appends the job to its priority's stream and returns the entry, for the caller to keep
-- in the job's hash: the run's end acknowledges and deletes it.
local function append_entry(id, priority)
  open_level(priority)
  return redis.call('XADD', stream_key(priority), '*', 'id', id)
end

-- Makes a job wait in its priority's stream (again).
local function make_ready(id, priority)
  redis.call('HSET', job_key(id), 'entry', append_entry(id, priority))
end

-- Jobs given back (rescued from an expired lease, released by a worker shutting down) wait
-- for their next claim on the entry they already have, still pending in the group: a
-- stream only appends, and a fresh entry would put them behind every job that queued up
-- meanwhile. A claim takes one of them before its level's new entries, in the order their
-- entries were added (then by id), as PostgreSQL orders by run-at then id. One per claim:
-- jobs that came back together (the batch of a worker a poison job killed) go out in
-- different claims, so a job that kills its worker does not take the same neighbours
-- down with it on every attempt.
local function returned_key(priority)
  return base .. 'returned:' .. priority
end

-- Ids sort as members of the returned set only when they are the same length.
local function returned_member(id)
  return string.rep('0', 20 - #id) .. id
end

local function returned_id(member)
  return string.match(member, '^0*(%d+)$')
end

-- Makes a given-back job wait again: on its pending entry when it has one, else on a
-- fresh one.
local function make_returned(id, priority, entry)
  if not entry then
    make_ready(id, priority)
    return
  end
  open_level(priority)
  local added_ms = string.match(entry, '^(%d+)')
  redis.call('ZADD', returned_key(priority), added_ms, returned_member(id))
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

-- The job reaches a terminal state at `now`. Dead jobs are indexed by time of death for
-- listing, replay and retention; completed and cancelled ones join the end of `finished`,
-- a list in finish order (an append, where a sorted set would cost a search per job),
-- which retention reads from its head.
local function finish(id, state, now, unique_key)
  redis.call('HSET', job_key(id), 'state', state, 'finished_at', fmt(now))
  if state == 'dead' then
    redis.call('ZADD', base .. 'dead', fmt(now), id)
  else
    redis.call('RPUSH', base .. 'finished', id)
  end
  free_unique(id, unique_key)
end

-- The fencing check: the job is running under exactly this token. A plain XACK would
-- succeed from any consumer; this is what stops a zombie from ending a run it lost.
local function fenced(state, current, token)
  return state == 'running' and current == token
end

-- Groups a batch's stream entries by priority level, so each stream is acknowledged in
-- one call.
local function add_entry(entries, priority, entry)
  local list = entries[priority]
  if not list then
    list = {}
    entries[priority] = list
  end
  list[#list + 1] = entry
end

-- Deletes a stream's finished head: every entry older than the oldest pending one or,
-- with none pending, every delivered entry. A stream delivers in ID order, so nothing
-- undelivered is older than either bound, and every delivered entry that is not pending
-- was acknowledged. One trim costs a fraction of an XDEL per entry; an entry acknowledged
-- while an older run still runs stays until that run ends.
local function trim_finished(stream)
  local oldest = redis.call('XPENDING', stream, GROUP)[2]
  if not oldest then
    for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
      local info = {}
      for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
      if info['name'] == GROUP then
        local ms, seq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')
        oldest = ms .. '-' .. fmt(tonumber(seq) + 1)
      end
    end
  end
  if oldest then redis.call('XTRIM', stream, 'MINID', oldest) end
end

-- Acknowledges a batch's entries, a stream at a time, and trims what they free.
local function ack_entries(entries)
  for priority, list in pairs(entries) do
    local stream = stream_key(priority)
    call_batched('XACK', stream, {GROUP}, list)
    trim_finished(stream)
  end
end

-- The runs under the (id, token) pairs of ARGV from `first` on succeeded. Each is fenced
-- on its own token, in order (a pair given twice is recorded once); the keys every run
-- touches (the streams, `leases`, `finished`, `counts`) are written once for the batch.
-- A completed job's hash keeps its last `entry`: nothing reads it unless the job is live.
-- Returns per pair 1, or 0 when stale.
local function complete_runs(first, now)
  local stamp = fmt(now)
  local acks, done, entries = {}, {}, {}
  for i = first, #ARGV, 2 do
    local id, token = ARGV[i], ARGV[i + 1]
    local key = job_key(id)
    local job = redis.call('HMGET', key, 'state', 'token', 'entry', 'priority', 'unique_key')
    if fenced(job[1], job[2], token) then
      redis.call('HSET', key, 'state', 'completed', 'finished_at', stamp)
      if job[3] then add_entry(entries, job[4], job[3]) end
      free_unique(id, job[5])
      done[#done + 1] = id
      acks[#acks + 1] = 1
    else
      acks[#acks + 1] = 0
    end
  end
  if #done > 0 then
    ack_entries(entries)
    call_batched('ZREM', base .. 'leases', {}, done)
    call_batched('RPUSH', base .. 'finished', {}, done)
    count_many('running', 'completed', #done)
  end
  return acks
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

-- Leases up to `limit` due jobs, highest priority first, for consumer `worker`, at `now`.
-- Returns per claim {id, token, payload, attempt, max_attempts, priority, enqueued_at_us},
-- payload, max_attempts and enqueued_at_us as the job's hash holds them.
local function claim_jobs(worker, limit, lease_us, now)
  -- The promoter: scheduled and retrying jobs whose time has come join their priority's
  -- stream, oldest first. Idempotent, so every claimer runs it. They leave the set only
  -- once all have joined: a script that fails midway keeps its writes, and a job out of
  -- the set but in no stream would never be claimed, while one promoted twice only leaves
  -- a stale entry, which a claim drops.
  local due = redis.call('ZRANGEBYSCORE', base .. 'delayed', '-inf', fmt(now), 'LIMIT', 0, 1000)
  if #due > 0 then
    for _, id in ipairs(due) do
      local priority = redis.call('HGET', job_key(id), 'priority')
      if priority then make_ready(id, priority) end
    end
    call_batched('ZREM', base .. 'delayed', {}, due)
  end

  -- One stream per priority level, read highest level first: a single stream delivers in
  -- arrival order only. Per job one read and one write of its hash; the keys every claim
  -- touches (`tokens`, `leases`, `counts`) are written once per read.
  local claims = {}
  local levels = redis.call('ZREVRANGE', base .. 'levels', 0, -1)
  local expires = fmt(now + lease_us)
  -- A key another client overwrote with another type answers an error, not a hash: it
  -- is read as no job (its entry is dropped) rather than failing the script after its
  -- read marked the entries before it delivered, which no claim would deliver again.
  local function hash_of(id)
    local job = redis.pcall('HMGET', job_key(id), 'state', 'entry', 'attempt',
      'max_attempts', 'payload', 'enqueued_at')
    if type(job) == 'table' and job.err then return {} end
    return job
  end
  -- Each lease is in `leases` and the counters before the script reads on: Redis does not
  -- undo a script that fails midway, and a job left running outside `leases` would never
  -- be rescued.
  local function lease_all(fresh, priority)
    if #fresh == 0 then return end
    local last = redis.call('INCRBY', base .. 'tokens', #fresh)
    local leased = {}
    for i, claim in ipairs(fresh) do
      local id, job = claim[1], claim[2]
      -- Attempts are counted here, not taken from the delivery count: a release gives
      -- its attempt back and a replay starts over, which a delivery count cannot do.
      local attempt = (tonumber(job[3]) or 0) + 1
      local token = last - #fresh + i
      redis.call('HSET', job_key(id), 'state', 'running', 'attempt', fmt(attempt),
        'token', fmt(token), 'owner', worker)
      leased[#leased + 1] = expires
      leased[#leased + 1] = id
      -- Fields go back as stored (a nil would cut the row short): the caller reads them,
      -- and buries a job whose hash it cannot read.
      claims[#claims + 1] = {tonumber(id), token, job[5] or '', attempt, job[4] or '',
        tonumber(priority), job[6] or ''}
    end
    call_batched('ZADD', base .. 'leases', {}, leased)
    count_many('available', 'running', #fresh)
  end
  local took_returned = false
  for _, priority in ipairs(levels) do
    local stream = stream_key(priority)
    local returned = returned_key(priority)
    -- A given-back job first, if this claim has not taken one yet: its entry is pending
    -- already (a read of new entries never sees it) and moves to this worker as it goes.
    while not took_returned do
      local member = redis.call('ZRANGE', returned, 0, 0)[1]
      if not member then break end
      redis.call('ZREM', returned, member)
      local id = returned_id(member)
      local job = hash_of(id)
      if job[1] == 'available' and job[2] then
        redis.call('XCLAIM', stream, GROUP, worker, 0, job[2], 'JUSTID')
        lease_all({{id, job}}, priority)
        took_returned = true
      end
    end
    while #claims < limit do
      local want = limit - #claims
      local read = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', want,
        'STREAMS', stream, '>')
      local delivered = read and read[1][2] or {}
      local fresh, stale = {}, {}
      for _, entry in ipairs(delivered) do
        local entry_id, id = entry[1], entry[2][2]
        local job = hash_of(id)
        if job[1] == 'available' and job[2] == entry_id then
          fresh[#fresh + 1] = {id, job}
        else
          -- An entry no job waits on any more: drop it.
          stale[#stale + 1] = entry_id
        end
      end
      lease_all(fresh, priority)
      if #stale > 0 then
        call_batched('XACK', stream, {GROUP}, stale)
        call_batched('XDEL', stream, {}, stale)
      end
      if #delivered < want then
        -- Nothing undelivered is left at this level: unless given-back jobs still wait
        -- there, it leaves the index until a job joins it again.
        if redis.call('ZCARD', returned) == 0 then
          redis.call('ZREM', base .. 'levels', priority)
        end
        break
      end
    end
    if #claims >= limit then break end
  end
  return claims
end
