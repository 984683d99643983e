use std::convert::Infallible;
use std::hint::black_box;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use brigade_core::{AsyncJob, Job, JobContext};

/// What one job does: the same code runs inside every subject, so the subjects differ only
/// in how they dispatch it.
///
/// Every kind returns a `u64` that the subject hands back to the caller, so "every result
/// collected" means the same thing for all of them.
///
/// # Examples
///
/// ```
/// use brigade_benches::Work;
///
/// assert_eq!(Work::Noop.run(7), 7);
/// assert_ne!(Work::Spin { rounds: 200 }.run(7), 7);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Returns its input: the cost measured is dispatch alone.
    Noop,
    /// `rounds` multiply-adds on the input (a small CPU job).
    Spin {
        /// How many multiply-adds.
        rounds: u32,
    },
    /// Sleeps, then returns its input: an I/O-like job. Thread subjects block the worker,
    /// async subjects await a timer.
    Sleep(Duration),
    /// Returns how long ago (ns) the job was submitted, then spins `rounds` times: the input
    /// is the submission time from [`clock_ns`].
    Stamp {
        /// How many multiply-adds after the stamp.
        rounds: u32,
    },
    /// Blocks on the process-wide gate (see [`Gate`]) until it opens, then returns its input.
    /// Used to hold every worker busy while jobs pile up in the queue.
    Gate,
}

impl Work {
    /// Runs the job on the current thread (a `Sleep` blocks it).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::Work;
    ///
    /// assert_eq!(Work::Noop.run(3), 3);
    /// ```
    #[inline]
    pub fn run(self, input: u64) -> u64 {
        match self {
            Work::Noop => input,
            Work::Spin { rounds } => spin(input, rounds),
            Work::Sleep(duration) => {
                std::thread::sleep(duration);
                input
            }
            Work::Stamp { rounds } => {
                let waited = clock_ns().saturating_sub(input);
                black_box(spin(input, rounds));
                waited
            }
            Work::Gate => {
                Gate::global().pass();
                input
            }
        }
    }

    /// Runs the job inside an async task: a `Sleep` awaits a tokio timer instead of blocking,
    /// and a `Gate` blocks through `block_in_place` (so, on a multi-thread runtime only).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::Work;
    ///
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// assert_eq!(rt.block_on(Work::Noop.run_async(5)), 5);
    /// ```
    #[inline]
    pub async fn run_async(self, input: u64) -> u64 {
        match self {
            Work::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                input
            }
            Work::Gate => {
                // A task woken by this one just before it blocks sits in this thread's LIFO
                // slot, which other threads do not steal: blocking in place hands it, with
                // the rest of this thread's queue, to another thread first.
                tokio::task::block_in_place(|| Gate::global().pass());
                input
            }
            other => other.run(input),
        }
    }

    /// Whether the output equals the input, so a run can be checked by the sum of its outputs.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::Work;
    ///
    /// assert!(Work::Noop.is_identity());
    /// ```
    #[must_use]
    pub fn is_identity(self) -> bool {
        matches!(self, Work::Noop | Work::Sleep(_) | Work::Gate)
    }
}

/// `rounds` dependent multiply-adds (a 64-bit LCG step each), opaque to the optimiser.
///
/// Each step also folds the high bits back in (`x ^= x >> 29`): consecutive pure LCG steps
/// compose into one (`a·(a·x + c) + c = a²·x + (a·c + c)`), and the compiler does fold
/// them after unrolling, which would make a "200-round" job run a fraction of that.
///
/// # Examples
///
/// ```
/// assert_eq!(brigade_benches::spin(1, 0), 1);
/// ```
#[inline]
#[must_use]
pub fn spin(seed: u64, rounds: u32) -> u64 {
    let mut x = black_box(seed);
    for _ in 0..rounds {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x ^= x >> 29;
    }
    black_box(x)
}

/// How many [`spin`] rounds take about `target` on this machine (median of a few probes).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rounds = brigade_benches::calibrate_spin(Duration::from_micros(10));
/// assert!(rounds > 0);
/// ```
#[must_use]
pub fn calibrate_spin(target: Duration) -> u32 {
    const PROBE: u32 = 200_000;
    let mut per_round = Vec::with_capacity(7);
    for _ in 0..7 {
        let started = Instant::now();
        black_box(spin(1, PROBE));
        per_round.push(started.elapsed().as_secs_f64() / f64::from(PROBE));
    }
    per_round.sort_by(f64::total_cmp);
    let rounds = target.as_secs_f64() / per_round[per_round.len() / 2].max(1e-12);
    rounds.clamp(1.0, f64::from(u32::MAX)) as u32
}

/// Nanoseconds since a process-wide epoch: the stamp [`Work::Stamp`] compares against.
///
/// # Examples
///
/// ```
/// let a = brigade_benches::clock_ns();
/// assert!(brigade_benches::clock_ns() >= a);
/// ```
#[must_use]
pub fn clock_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A process-wide gate that [`Work::Gate`] jobs block on: the memory workload closes it,
/// waits until every worker is parked in it, measures, then opens it.
///
/// It is global because the job must stay a small `Copy` value, the same in every subject.
///
/// # Examples
///
/// ```
/// use brigade_benches::{Gate, Work};
///
/// let gate = Gate::global();
/// gate.close();
/// let worker = std::thread::spawn(|| Work::Gate.run(1));
/// gate.wait_for(1);
/// gate.open();
/// assert_eq!(worker.join().unwrap(), 1);
/// ```
#[derive(Debug)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug)]
struct GateState {
    open: bool,
    waiting: usize,
}

impl Gate {
    /// The process's gate (open until someone closes it).
    ///
    /// # Examples
    ///
    /// ```
    /// brigade_benches::Gate::global().open();
    /// ```
    pub fn global() -> &'static Gate {
        static GATE: Gate = Gate {
            state: Mutex::new(GateState {
                open: true,
                waiting: 0,
            }),
            changed: Condvar::new(),
        };
        &GATE
    }

    /// Closes the gate and forgets earlier arrivals.
    ///
    /// # Examples
    ///
    /// ```
    /// let gate = brigade_benches::Gate::global();
    /// gate.close();
    /// gate.open();
    /// ```
    pub fn close(&self) {
        let mut state = self.lock();
        state.open = false;
        state.waiting = 0;
    }

    /// Opens the gate, releasing every job blocked in it.
    ///
    /// # Examples
    ///
    /// ```
    /// brigade_benches::Gate::global().open();
    /// ```
    pub fn open(&self) {
        self.lock().open = true;
        self.changed.notify_all();
    }

    /// Blocks until `count` jobs are waiting in the closed gate.
    ///
    /// # Examples
    ///
    /// ```
    /// // Nothing to wait for.
    /// brigade_benches::Gate::global().wait_for(0);
    /// ```
    pub fn wait_for(&self, count: usize) {
        let mut state = self.lock();
        while !state.open && state.waiting < count {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn pass(&self) {
        let mut state = self.lock();
        state.waiting += 1;
        self.changed.notify_all();
        while !state.open {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The job brigade's pools run: a [`Work`] and its input, a named type so a pool is typed on
/// it without a box per job (the way the design recommends using brigade).
///
/// # Examples
///
/// ```
/// use brigade_benches::{BenchJob, Work};
/// use brigade_core::{AsyncJob, Job, JobContext};
///
/// let mut job = BenchJob::new(Work::Noop, 9);
/// assert_eq!(Job::run(&mut job, &JobContext::detached()), Ok(9));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchJob {
    /// What the job does.
    pub work: Work,
    /// Its input.
    pub input: u64,
}

impl BenchJob {
    /// A job running `work` on `input`.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = brigade_benches::BenchJob::new(brigade_benches::Work::Noop, 1);
    /// assert_eq!(job.input, 1);
    /// ```
    #[must_use]
    pub fn new(work: Work, input: u64) -> Self {
        BenchJob { work, input }
    }
}

impl AsyncJob for BenchJob {
    type Output = u64;
    type Error = Infallible;

    #[inline]
    async fn run(&mut self, _cx: &JobContext) -> Result<u64, Infallible> {
        Ok(self.work.run_async(self.input).await)
    }
}

impl Job for BenchJob {
    type Output = u64;
    type Error = Infallible;

    #[inline]
    fn run(&mut self, _cx: &JobContext) -> Result<u64, Infallible> {
        Ok(self.work.run(self.input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_reports_time_since_submission() {
        let submitted = clock_ns();
        std::thread::sleep(Duration::from_millis(2));
        assert!(Work::Stamp { rounds: 1 }.run(submitted) >= 2_000_000);
    }

    #[test]
    fn spin_depends_on_rounds() {
        assert_ne!(spin(3, 10), spin(3, 11));
    }
}
