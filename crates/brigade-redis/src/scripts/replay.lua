-- Makes one dead job available again. ARGV: base, id. Returns 1, or 0 when not dead (or a
-- live job holds its unique key).
local replayed = replay_one(ARGV[2])
if replayed == 1 then wake() end
return replayed
