-- Gives back the units a run took and tells every process's waiters.
-- KEYS: the holders sorted set, their weights hash.
-- ARGV: holder, the units channel, the limit's key.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
