use std::time::{Duration, Instant};

use crate::{Work, clock_ns};

/// One measured run: how many jobs of what work, on how many workers.
///
/// Every subject receives the same `Batch` and must return one output per job.
///
/// # Examples
///
/// ```
/// use brigade_benches::{Batch, Work};
///
/// let batch = Batch::new(100, 2, Work::Noop);
/// assert_eq!(batch.inputs().count(), 100);
/// assert_eq!(batch.expected_sum(), Some(4950));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Jobs to run.
    pub jobs: usize,
    /// Concurrency: worker threads, or the permit count of async subjects.
    pub workers: usize,
    /// OS threads an async runtime gets (the machine's parallelism).
    pub threads: usize,
    /// Capacity of bounded queues (brigade, the crossbeam pool); unbounded peers ignore it.
    pub queue_capacity: usize,
    /// What each job does.
    pub work: Work,
    /// If set, submissions are paced one per `pace` and inputs are submission stamps.
    pub pace: Option<Duration>,
}

/// Capacity of the bounded queues in throughput runs: large enough that a producer rarely
/// waits, small enough that memory stays bounded, and the same for every bounded subject.
pub const QUEUE_CAPACITY: usize = 1024;

impl Batch {
    /// A batch of `jobs` jobs on `workers` workers, with the default queue capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let batch = brigade_benches::Batch::new(10, 4, brigade_benches::Work::Noop);
    /// assert_eq!(batch.workers, 4);
    /// ```
    #[must_use]
    pub fn new(jobs: usize, workers: usize, work: Work) -> Self {
        Batch {
            jobs,
            workers,
            threads: available_parallelism(),
            queue_capacity: QUEUE_CAPACITY,
            work,
            pace: None,
        }
    }

    /// The inputs to submit, in order; paced (and stamped) when [`Batch::pace`] is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let batch = brigade_benches::Batch::new(3, 1, brigade_benches::Work::Noop);
    /// assert_eq!(batch.inputs().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn inputs(&self) -> Inputs {
        Inputs {
            next: 0,
            end: self.jobs as u64,
            pace: self.pace,
            started: Instant::now(),
        }
    }

    /// The sum of all outputs when the work returns its input, to check nothing was lost.
    ///
    /// # Examples
    ///
    /// ```
    /// let batch = brigade_benches::Batch::new(4, 1, brigade_benches::Work::Noop);
    /// assert_eq!(batch.expected_sum(), Some(6));
    /// ```
    #[must_use]
    pub fn expected_sum(&self) -> Option<u64> {
        let n = self.jobs as u64;
        (self.work.is_identity() && self.pace.is_none()).then(|| n * n.saturating_sub(1) / 2)
    }

    /// Panics unless `outputs` holds one result per job (and the right sum where known):
    /// a subject that loses or invents results must not produce a number.
    ///
    /// # Panics
    ///
    /// If a result is missing or wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// let batch = brigade_benches::Batch::new(3, 1, brigade_benches::Work::Noop);
    /// batch.check("demo", &[2, 0, 1]);
    /// ```
    pub fn check(&self, subject: &str, outputs: &[u64]) {
        assert_eq!(
            outputs.len(),
            self.jobs,
            "{subject}: {} results for {} jobs",
            outputs.len(),
            self.jobs
        );
        if let Some(expected) = self.expected_sum() {
            let sum = outputs.iter().fold(0u64, |a, b| a.wrapping_add(*b));
            assert_eq!(sum, expected, "{subject}: wrong results");
        }
    }
}

/// Iterator over a batch's inputs, waiting out the pace between items when there is one.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_benches::{Batch, Work};
///
/// let mut batch = Batch::new(2, 1, Work::Stamp { rounds: 1 });
/// batch.pace = Some(Duration::from_micros(10));
/// let stamps: Vec<u64> = batch.inputs().collect();
/// assert!(stamps[1] >= stamps[0]);
/// ```
#[derive(Debug)]
pub struct Inputs {
    next: u64,
    end: u64,
    pace: Option<Duration>,
    started: Instant,
}

impl Iterator for Inputs {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.next == self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let Some(pace) = self.pace else {
            return Some(index);
        };
        // An absolute schedule: a late submission does not push the later ones back, so the
        // offered rate stays what was asked for.
        let due = self.started + pace.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX));
        wait_until(due);
        Some(clock_ns())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

/// Sleeps until the instant. It never spins: on a machine with as many workers as cores, a
/// spinning producer takes a core from the workers and turns "half load" into overload.
/// The OS's oversleep (tens of µs) delays a submission; the absolute schedule makes the
/// next ones catch up, so the offered rate holds on average.
fn wait_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// The machine's parallelism (1 if unknown).
///
/// # Examples
///
/// ```
/// assert!(brigade_benches::available_parallelism() >= 1);
/// ```
#[must_use]
pub fn available_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
