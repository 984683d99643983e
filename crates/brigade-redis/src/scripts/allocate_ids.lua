-- Draws `count` job ids and records each one's queue, so that `job(id)` finds the job.
-- KEYS: the id counter, the id -> queue hash (one slot: `{ids}`). ARGV: queue, count.
-- Returns the last id drawn; the batch is last - count + 1 ..= last.
local count = tonumber(ARGV[2])
local last = redis.call('INCRBY', KEYS[1], count)
for id = last - count + 1, last do
  redis.call('HSET', KEYS[2], string.format('%.0f', id), ARGV[1])
end
return last
