use std::fmt;
use std::time::Duration;

use crate::{Batch, Gate, Work, Workload};

/// A pool under measurement. Each implementation is written the way its users write it
/// (brigade with handles, the Go-style pool with channels, tokio with a `JoinSet`, …) and
/// collects every job's result.
///
/// Adding a subject is one file under `subjects/` and one line in [`all_subjects`](crate::all_subjects).
///
/// # Examples
///
/// ```
/// use brigade_benches::{Batch, Work, all_subjects};
///
/// let batch = Batch::new(1_000, 2, Work::Noop);
/// for subject in all_subjects() {
///     let run = subject.run(&batch);
///     batch.check(subject.name(), &run.outputs);
/// }
/// ```
pub trait Subject: Send + Sync {
    /// The name in reports, e.g. `crossbeam-pool`.
    fn name(&self) -> &'static str;

    /// Builds a pool of `batch.workers`, then times submitting every input and collecting
    /// every output (building and shutting the pool down are not timed).
    fn run(&self, batch: &Batch) -> Run;

    /// The memory workload: holds every worker in [`Work::Gate`](crate::Work::Gate) jobs,
    /// calls `probe(Held::Empty)`, queues `batch.jobs` more, calls `probe(Held::Full)`, opens
    /// the gate and collects every result. Returns the number of results, or `None` if the
    /// subject has no queue to fill (its producer waits instead).
    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        let _ = (batch, probe);
        None
    }

    /// The idle workload: builds a pool of `workers`, runs a job on each, then calls
    /// `during` (which measures) while the pool sits idle. Returns `false` if unsupported.
    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool;

    /// Size in bytes of one queued job's own payload (the closure or job value), subtracted
    /// from the bytes per queued job to get the pool's overhead.
    fn job_size(&self) -> usize;

    /// Whether this subject takes part in `workload`. By default a subject runs every workload
    /// but `middleware`, which compares brigade's bare and layered pools.
    fn supports(&self, workload: Workload) -> bool {
        workload != Workload::Middleware
    }
}

impl fmt::Debug for dyn Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("name", &self.name())
            .finish()
    }
}

/// What a timed run produced.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let run = brigade_benches::Run { elapsed: Duration::from_millis(1), outputs: vec![1] };
/// assert_eq!(run.outputs.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// From the first submission to the last result collected.
    pub elapsed: Duration,
    /// One output per job, in completion order.
    pub outputs: Vec<u64>,
}

/// The two moments the memory workload measures at.
///
/// # Examples
///
/// ```
/// assert_ne!(brigade_benches::Held::Empty, brigade_benches::Held::Full);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Every worker is blocked in the gate; the queue is empty.
    Empty,
    /// Every job is queued behind the blocked workers.
    Full,
}

/// The payload a peer queues per job: the work and its input (closures also capture a
/// results sender, which counts as the peer's overhead, like brigade's handle does).
pub(crate) const PEER_PAYLOAD: usize = std::mem::size_of::<(crate::Work, u64)>();

/// Fills a pool for [`Subject::hold`]: `batch.workers` gate jobs, wait until all are parked,
/// probe, `batch.jobs` jobs of `batch.work`, probe, open. Returns how many jobs went in.
pub(crate) fn fill(
    batch: &Batch,
    probe: &mut dyn FnMut(Held),
    mut submit: impl FnMut(Work, u64),
) -> usize {
    let gate = Gate::global();
    gate.close();
    for input in 0..batch.workers as u64 {
        submit(Work::Gate, input);
    }
    gate.wait_for(batch.workers);
    probe(Held::Empty);
    for input in 0..batch.jobs as u64 {
        submit(batch.work, input);
    }
    probe(Held::Full);
    gate.open();
    batch.workers + batch.jobs
}
