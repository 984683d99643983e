-- Replays the dead jobs of a queue, oldest death first: those at ranks start .. start +
-- limit - 1 of the dead index (the caller moves `start` past jobs a live unique key holds
-- back). ARGV: base, start, limit. Returns {replayed, looked at}.
local start = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', base .. 'dead', start, start + tonumber(ARGV[3]) - 1)
local replayed = 0
for _, id in ipairs(ids) do
  replayed = replayed + replay_one(id)
end
if replayed > 0 then wake() end
return {replayed, #ids}
