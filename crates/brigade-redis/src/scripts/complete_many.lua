-- Several runs of one queue succeeded: each is fenced on its own token, as `complete`.
-- ARGV: base, then id, token pairs. Returns per pair 1, or 0 when stale, in order.
return complete_runs(2, now_us())
