//! The job every chaos worker runs.

use serde::{Deserialize, Serialize};

/// One job: its sequence number in the producer's ledger, how long its work takes, and
/// whether it is poison (its handler aborts the process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChaosJob {
    /// The producer's sequence number: joins ledger lines with the store's rows.
    pub(crate) n: u64,
    /// Milliseconds of pretend work.
    pub(crate) work_ms: u32,
    /// Abort the process instead of working.
    #[serde(default)]
    pub(crate) poison: bool,
}

impl ChaosJob {
    /// A job with a random amount of work: mostly 5–50 ms, one in thirty 0.5–1.5 s, so that
    /// faults find long runs to interrupt and heartbeats have leases to keep.
    pub(crate) fn random(n: u64, rng: &mut fastrand::Rng) -> Self {
        let work_ms = if rng.u32(0..30) == 0 {
            rng.u32(500..=1500)
        } else {
            rng.u32(5..=50)
        };
        Self {
            n,
            work_ms,
            poison: false,
        }
    }

    /// A job whose handler aborts the worker process.
    pub(crate) fn poison(n: u64) -> Self {
        Self {
            n,
            work_ms: 0,
            poison: true,
        }
    }
}
