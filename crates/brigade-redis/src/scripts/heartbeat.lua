-- Extends the leases still held. ARGV: base, lease_us, then id, token pairs.
-- Returns the positions (from 0) of the pairs whose lease was extended; any other lease is
-- lost. Positions, not ids: one call may carry a job's stale lease beside its current one.
local now = now_us()
local expires = fmt(now + tonumber(ARGV[2]))
local renewed, scores, pending = {}, {}, {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local job = redis.call('HMGET', job_key(id), 'state', 'token', 'entry', 'priority', 'owner')
  -- A lease past its expiry is lost even before a rescue: its units may be another
  -- run's already (acquire_units takes back expired holders).
  local expiry = tonumber(redis.call('ZSCORE', base .. 'leases', id))
  if fenced(job[1], job[2], token) and expiry and expiry >= now then
    scores[#scores + 1] = expires
    scores[#scores + 1] = id
    if job[3] then
      -- Entries to touch, by stream and consumer.
      local stream = stream_key(job[4])
      local by_owner = pending[stream]
      if not by_owner then
        by_owner = {}
        pending[stream] = by_owner
      end
      local entries = by_owner[job[5]]
      if not entries then
        entries = {}
        by_owner[job[5]] = entries
      end
      entries[#entries + 1] = job[3]
    end
    renewed[#renewed + 1] = (i - 3) / 2
  end
end
if #scores > 0 then call_batched('ZADD', base .. 'leases', {'XX'}, scores) end
-- Resets the pending entries' idle time too, so XPENDING shows live runs as fresh.
for stream, by_owner in pairs(pending) do
  for owner, entries in pairs(by_owner) do
    for first = 1, #entries, 2000 do
      local ids = {}
      for i = first, math.min(first + 1999, #entries) do ids[#ids + 1] = entries[i] end
      ids[#ids + 1] = 'JUSTID'
      redis.call('XCLAIM', stream, GROUP, owner, 0, unpack(ids))
    end
  end
end
return renewed
