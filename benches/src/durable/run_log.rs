//! What a worker process saw: one entry per job run, handed to the coordinator at exit.

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::job::{NoopJob, wall_clock_us};

/// One run of one job, as `[seq, enqueued_us, started_us]` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRun {
    /// The job's number.
    pub seq: u64,
    /// When it was enqueued (µs since the epoch).
    pub enqueued_us: i64,
    /// When the handler started it (µs since the epoch).
    pub started_us: i64,
}

/// The runs of one worker process, shared by its handlers.
///
/// A mutex-guarded vector: a push is tens of nanoseconds against the hundreds of
/// microseconds a job spends in the database, so it does not bend the numbers.
#[derive(Clone, Debug, Default)]
pub struct RunLog {
    runs: Arc<Mutex<Vec<JobRun>>>,
}

impl RunLog {
    /// Records that `job` starts now.
    pub fn record(&self, job: &NoopJob) {
        let run = JobRun {
            seq: job.seq,
            enqueued_us: job.enqueued_us,
            started_us: wall_clock_us(),
        };
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(run);
    }

    /// Every run recorded so far.
    #[must_use]
    pub fn take(&self) -> Vec<JobRun> {
        std::mem::take(&mut *self.runs.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
