-- Gives back the units a run took. KEYS: the holders sorted set, their weights hash.
-- ARGV: holder.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
