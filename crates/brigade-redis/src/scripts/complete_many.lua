-- Several runs of one queue succeeded: each is fenced on its own token, as `complete`.
-- ARGV: base, then id, token pairs. Returns per pair 1, or 0 when stale, in order.
local now = now_us()
local acks = {}
for i = 2, #ARGV, 2 do
  acks[#acks + 1] = complete_one(ARGV[i], ARGV[i + 1], now)
end
return acks
