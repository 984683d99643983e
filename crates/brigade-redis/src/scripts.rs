//! The Lua scripts, one file per transition (see `scripts/`), loaded once per store and
//! run with EVALSHA, falling back to EVAL when the server has lost its script cache (a
//! restart, a failover).

use redis::Script;

/// Every script of the store.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) allocate_ids: Script,
    pub(crate) enqueue: Script,
    pub(crate) claim: Script,
    pub(crate) heartbeat: Script,
    pub(crate) complete: Script,
    pub(crate) complete_many: Script,
    pub(crate) complete_and_claim: Script,
    pub(crate) retry: Script,
    pub(crate) bury: Script,
    pub(crate) release: Script,
    pub(crate) rescue: Script,
    pub(crate) cancel: Script,
    pub(crate) replay: Script,
    pub(crate) replay_all: Script,
    pub(crate) purge: Script,
    pub(crate) counts: Script,
    pub(crate) take_rate: Script,
    pub(crate) acquire_units: Script,
    pub(crate) renew_units: Script,
    pub(crate) release_units: Script,
}

/// The helpers every queue script shares (fencing, stream entries, counters).
const PRELUDE: &str = include_str!("scripts/prelude.lua");

/// A queue script: the prelude, then its own body.
fn queue_script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            allocate_ids: Script::new(include_str!("scripts/allocate_ids.lua")),
            enqueue: queue_script(include_str!("scripts/enqueue.lua")),
            claim: queue_script(include_str!("scripts/claim.lua")),
            heartbeat: queue_script(include_str!("scripts/heartbeat.lua")),
            complete: queue_script(include_str!("scripts/complete.lua")),
            complete_many: queue_script(include_str!("scripts/complete_many.lua")),
            complete_and_claim: queue_script(include_str!("scripts/complete_and_claim.lua")),
            retry: queue_script(include_str!("scripts/retry.lua")),
            bury: queue_script(include_str!("scripts/bury.lua")),
            release: queue_script(include_str!("scripts/release.lua")),
            rescue: queue_script(include_str!("scripts/rescue.lua")),
            cancel: queue_script(include_str!("scripts/cancel.lua")),
            replay: queue_script(include_str!("scripts/replay.lua")),
            replay_all: queue_script(include_str!("scripts/replay_all.lua")),
            purge: queue_script(include_str!("scripts/purge.lua")),
            counts: queue_script(include_str!("scripts/counts.lua")),
            take_rate: Script::new(include_str!("scripts/take_rate.lua")),
            acquire_units: Script::new(include_str!("scripts/acquire_units.lua")),
            renew_units: Script::new(include_str!("scripts/renew_units.lua")),
            release_units: Script::new(include_str!("scripts/release_units.lua")),
        }
    }
}
