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
    /// A job of a small batch: mostly 5–50 ms, one in six 0.5–1.5 s, so that kills and
    /// pauses find runs to interrupt.
    pub(crate) fn random(n: u64, rng: &mut fastrand::Rng) -> Self {
        if rng.u32(0..6) == 0 {
            Self::working(n, rng.u32(500..=1500))
        } else {
            Self::short(n, rng)
        }
    }

    /// A job of 5–50 ms: all of a burst's, so that it is the rate limit, not the units of
    /// the concurrency limit, that holds a burst back.
    pub(crate) fn short(n: u64, rng: &mut fastrand::Rng) -> Self {
        Self::working(n, rng.u32(5..=50))
    }

    /// A job of 3–6 s, past the lease, kept alive by heartbeats: cut off from the store,
    /// only its worker's fence can stop it before its lease runs out.
    pub(crate) fn long(n: u64, rng: &mut fastrand::Rng) -> Self {
        Self::working(n, rng.u32(3000..=6000))
    }

    fn working(n: u64, work_ms: u32) -> Self {
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
