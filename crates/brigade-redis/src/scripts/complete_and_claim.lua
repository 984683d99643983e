-- Runs of a queue succeeded, and their worker claims again: `complete_many`, then `claim`,
-- in one script (one round trip, one write to the append-only file).
-- ARGV: base, worker, limit, lease_us, then id, token pairs.
-- Returns {per pair 1 or 0 (stale), the claims as `claim` returns them}.
local now = now_us()
local acks = complete_runs(5, now)
return {acks, claim_jobs(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now)}
