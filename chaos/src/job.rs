//! The job every chaos worker runs.

use serde::{Deserialize, Serialize};

/// `fails` of a job that fails every run: it must end dead at exactly its `max_attempts`.
pub(crate) const ALWAYS: u32 = u32::MAX;
/// One job in this many (by `n`) fails its first attempt on purpose: the retry path.
pub(crate) const FAIL_FIRST_EVERY: u64 = 10;
/// Which `n` modulo [`FAIL_FIRST_EVERY`] fails its first attempt.
const FAIL_FIRST_AT: u64 = 7;

/// One job: its sequence number in the producer's ledger, how long its work takes, whether
/// it is poison (its handler aborts the process) and which of its attempts fail on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChaosJob {
    /// The producer's sequence number: joins ledger lines with the store's rows.
    pub(crate) n: u64,
    /// Milliseconds of pretend work.
    pub(crate) work_ms: u32,
    /// Abort the process instead of working.
    #[serde(default)]
    pub(crate) poison: bool,
    /// A run at an attempt up to this one returns an error after its work (0: none,
    /// [`ALWAYS`]: every run), so that the store's retry path and its burial at the last
    /// attempt are exercised, not only completions.
    #[serde(default)]
    pub(crate) fails: u32,
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

    /// A job of 2.5–3.5 s, sent alone when the orchestrator asks (before a graceful
    /// restart): it outlasts the workers' grace by far, so the SIGTERM must stop it and
    /// give it back. It never fails on purpose.
    pub(crate) fn past_grace(n: u64, rng: &mut fastrand::Rng) -> Self {
        Self {
            n,
            work_ms: rng.u32(2500..=3500),
            poison: false,
            fails: 0,
        }
    }

    /// A job of 5–50 ms whose every run fails: dead at exactly its `max_attempts`.
    pub(crate) fn always_failing(n: u64, rng: &mut fastrand::Rng) -> Self {
        Self {
            n,
            work_ms: rng.u32(5..=50),
            poison: false,
            fails: ALWAYS,
        }
    }

    /// A job of the flow or of a burst: it fails its first attempt when its `n` says so
    /// (one in [`FAIL_FIRST_EVERY`]), decided by `n` alone so that a replay fails the same.
    fn working(n: u64, work_ms: u32) -> Self {
        Self {
            n,
            work_ms,
            poison: false,
            fails: u32::from(n % FAIL_FIRST_EVERY == FAIL_FIRST_AT),
        }
    }

    /// A job whose handler aborts the worker process.
    pub(crate) fn poison(n: u64) -> Self {
        Self {
            n,
            work_ms: 0,
            poison: true,
            fails: 0,
        }
    }

    /// Whether the run at `attempt` fails on purpose.
    pub(crate) fn fails_at(&self, attempt: u32) -> bool {
        attempt <= self.fails
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_job_in_ten_fails_its_first_attempt_only() {
        let mut rng = fastrand::Rng::with_seed(3);
        let failing: Vec<u64> = (0..100)
            .filter(|&n| ChaosJob::random(n, &mut rng).fails_at(1))
            .collect();
        assert_eq!(failing.len(), 10, "{failing:?}");
        assert!(
            failing
                .iter()
                .all(|n| n % FAIL_FIRST_EVERY == FAIL_FIRST_AT)
        );
        let job = ChaosJob::short(FAIL_FIRST_AT, &mut rng);
        assert!(job.fails_at(1) && !job.fails_at(2));
        let hopeless = ChaosJob::always_failing(FAIL_FIRST_AT, &mut rng);
        assert!(hopeless.fails_at(1) && hopeless.fails_at(3) && hopeless.fails_at(u32::MAX));
        assert!(!ChaosJob::poison(FAIL_FIRST_AT).fails_at(1));
        assert!(!ChaosJob::past_grace(FAIL_FIRST_AT, &mut rng).fails_at(1));
    }

    #[test]
    fn old_payloads_read_as_never_failing() {
        let job: ChaosJob = serde_json::from_str(r#"{"n":7,"work_ms":5}"#).expect("decodes");
        assert_eq!(job.fails, 0);
    }
}
