use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Batch, Held, Scale, Subject, Work, Workload, calibrate_spin};

/// Spin rounds that make the `cpu` and `latency` jobs last what design.md asks on this
/// machine; measured once per run and handed to child processes so all agree.
///
/// # Examples
///
/// ```
/// let calibration = brigade_benches::Calibration::measure();
/// assert!(calibration.latency_rounds > calibration.cpu_rounds);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Rounds of [`spin`](crate::spin) in ~10 µs (the `cpu` job).
    pub cpu_rounds: u32,
    /// Rounds in ~100 µs (the `latency` job).
    pub latency_rounds: u32,
    /// What `std::thread::sleep(1 ms)` really takes here, in µs (median of 20): the OS's
    /// oversleep sets the floor of the `sleep` workload's ratio to ideal on threads.
    #[serde(default)]
    pub sleep_us: f64,
}

/// Multiply-adds per `spin` job (design.md: ~200).
pub const SPIN_ROUNDS: u32 = 200;
/// How long one `cpu` job computes.
pub const CPU_JOB: Duration = Duration::from_micros(10);
/// How long one `latency` job computes: long enough that half load leaves the producer time
/// to sleep between submissions instead of spinning on a core the workers need.
pub const LATENCY_JOB: Duration = Duration::from_micros(100);
/// How long one `sleep` job sleeps.
pub const SLEEP_JOB: Duration = Duration::from_millis(1);

impl Calibration {
    /// Measures the spin rounds on this machine.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_benches::Calibration::measure().cpu_rounds > 0);
    /// ```
    #[must_use]
    pub fn measure() -> Self {
        let cpu_rounds = calibrate_spin(CPU_JOB);
        let mut sleeps: Vec<f64> = (0..20)
            .map(|_| {
                let started = Instant::now();
                std::thread::sleep(SLEEP_JOB);
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        sleeps.sort_by(f64::total_cmp);
        Calibration {
            cpu_rounds,
            latency_rounds: cpu_rounds.saturating_mul(10),
            sleep_us: sleeps[sleeps.len() / 2],
        }
    }
}

/// One measurement of one subject on one workload: what the runner prints as a JSON line.
///
/// # Examples
///
/// ```
/// let sample = brigade_benches::Sample::new("noop", "crossbeam-pool", 0);
/// assert!(sample.metrics.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Workload name.
    pub workload: String,
    /// Subject name.
    pub subject: String,
    /// Round (0-based) within the run.
    pub round: usize,
    /// Named values: `seconds`, `p99_us`, `bytes_per_job`, …
    pub metrics: BTreeMap<String, f64>,
}

impl Sample {
    /// An empty sample.
    ///
    /// # Examples
    ///
    /// ```
    /// let sample = brigade_benches::Sample::new("noop", "x", 1);
    /// assert_eq!(sample.round, 1);
    /// ```
    #[must_use]
    pub fn new(workload: &str, subject: &str, round: usize) -> Self {
        Sample {
            workload: workload.to_owned(),
            subject: subject.to_owned(),
            round,
            metrics: BTreeMap::new(),
        }
    }

    fn with(mut self, name: &str, value: f64) -> Self {
        self.metrics.insert(name.to_owned(), value);
        self
    }
}

/// The batch a throughput workload runs at `scale`.
///
/// # Panics
///
/// If `workload` is not a throughput workload (`memory`, `idle` and `latency` are set up by
/// [`measure`]).
///
/// # Examples
///
/// ```
/// use brigade_benches::{Calibration, Scale, Work, Workload, throughput_batch};
///
/// let cal = Calibration { cpu_rounds: 10, latency_rounds: 100, sleep_us: 1000.0 };
/// assert_eq!(throughput_batch(Workload::Noop, Scale::Quick, cal).work, Work::Noop);
/// ```
#[must_use]
pub fn throughput_batch(workload: Workload, scale: Scale, calibration: Calibration) -> Batch {
    let work = match workload {
        Workload::Noop | Workload::Middleware | Workload::Memory => Work::Noop,
        Workload::Spin => Work::Spin {
            rounds: SPIN_ROUNDS,
        },
        Workload::Cpu => Work::Spin {
            rounds: calibration.cpu_rounds,
        },
        Workload::Sleep => Work::Sleep(SLEEP_JOB),
        Workload::Latency => Work::Stamp {
            rounds: calibration.latency_rounds,
        },
        Workload::Idle => panic!("idle has no batch"),
    };
    Batch::new(workload.jobs(scale), workload.workers(), work)
}

/// Measures how many latency jobs per second `subject` completes flat out, and returns the
/// pace (time between submissions) that offers half of that.
///
/// # Examples
///
/// ```
/// use brigade_benches::{Calibration, CrossbeamPool, Scale, half_load_pace};
///
/// let cal = Calibration { cpu_rounds: 10, latency_rounds: 100, sleep_us: 1000.0 };
/// assert!(half_load_pace(&CrossbeamPool, Scale::Quick, cal) > std::time::Duration::ZERO);
/// ```
#[must_use]
pub fn half_load_pace(subject: &dyn Subject, scale: Scale, calibration: Calibration) -> Duration {
    let mut batch = throughput_batch(Workload::Latency, scale, calibration);
    batch.jobs = batch.jobs.min(2_000);
    // The median of three: the best would overstate what a shared machine sustains.
    let mut runs: Vec<Duration> = (0..3)
        .map(|_| {
            let run = subject.run(&batch);
            batch.check(subject.name(), &run.outputs);
            run.elapsed
        })
        .collect();
    runs.sort();
    (runs[1] * 2) / u32::try_from(batch.jobs.max(1)).unwrap_or(u32::MAX)
}

/// Runs one measurement of `subject` on a throughput or latency workload, in this process.
///
/// `pace` is used by `latency` only (see [`half_load_pace`]).
///
/// # Panics
///
/// If the subject loses a result, or for `memory` (which needs a fresh process: see
/// [`measure_memory`]).
///
/// # Examples
///
/// ```
/// use brigade_benches::{Calibration, CrossbeamPool, Scale, Workload, measure};
///
/// let cal = Calibration { cpu_rounds: 10, latency_rounds: 100, sleep_us: 1000.0 };
/// let sample = measure(Workload::Noop, &CrossbeamPool, Scale::Quick, cal, None, 0);
/// assert!(sample.metrics["seconds"] > 0.0);
/// ```
#[must_use]
pub fn measure(
    workload: Workload,
    subject: &dyn Subject,
    scale: Scale,
    calibration: Calibration,
    pace: Option<Duration>,
    round: usize,
) -> Sample {
    let sample = Sample::new(workload.name(), subject.name(), round);
    match workload {
        Workload::Memory => panic!("memory is measured in a fresh process: use measure_memory"),
        Workload::Idle => {
            let window = Workload::idle_window(scale);
            let mut cpu = Duration::ZERO;
            let mut threads = 0;
            let supported = subject.idle(Workload::Idle.workers(), &mut || {
                std::thread::sleep(Duration::from_millis(50));
                let before = process_cpu_time();
                std::thread::sleep(window);
                cpu = process_cpu_time().saturating_sub(before);
                threads = thread_count();
            });
            assert!(supported, "{} has no idle measurement", subject.name());
            sample
                .with(
                    "cpu_ms_per_s",
                    cpu.as_secs_f64() * 1e3 / window.as_secs_f64(),
                )
                .with("threads", threads as f64)
        }
        Workload::Latency => {
            let mut batch = throughput_batch(workload, scale, calibration);
            batch.pace = pace;
            let run = subject.run(&batch);
            batch.check(subject.name(), &run.outputs);
            let mut waits = run.outputs;
            waits.sort_unstable();
            let offered = pace.map_or(0.0, |pace| 1.0 / pace.as_secs_f64());
            // Below the offered rate means the subject fell behind: its latency is then
            // queueing, not responsiveness.
            let achieved = batch.jobs as f64 / run.elapsed.as_secs_f64();
            sample
                .with("p50_us", percentile(&waits, 0.50) / 1e3)
                .with("p99_us", percentile(&waits, 0.99) / 1e3)
                .with("offered_per_s", offered)
                .with("achieved_per_s", achieved)
        }
        _ => {
            let batch = throughput_batch(workload, scale, calibration);
            let run = subject.run(&batch);
            batch.check(subject.name(), &run.outputs);
            let seconds = run.elapsed.as_secs_f64();
            let sample = sample
                .with("seconds", seconds)
                .with("jobs_per_s", batch.jobs as f64 / seconds);
            if let Work::Sleep(each) = batch.work {
                let ideal = each.as_secs_f64() * (batch.jobs as f64 / batch.workers as f64);
                sample
                    .with("ideal_seconds", ideal)
                    .with("ratio_to_ideal", seconds / ideal)
            } else {
                sample
            }
        }
    }
}

/// The memory workload for `subject`; call it in a process that ran nothing else, since
/// freed memory is not always returned to the OS. `None` if the subject has no queue.
///
/// # Panics
///
/// If the subject loses a result.
///
/// # Examples
///
/// ```
/// use brigade_benches::{CrossbeamPool, Scale, measure_memory};
///
/// let sample = measure_memory(&CrossbeamPool, Scale::Quick).unwrap();
/// assert!(sample.metrics.contains_key("bytes_per_job"));
/// ```
#[must_use]
pub fn measure_memory(subject: &dyn Subject, scale: Scale) -> Option<Sample> {
    let batch = Batch::new(
        Workload::Memory.jobs(scale),
        Workload::Memory.workers(),
        Work::Noop,
    );
    // The baseline is taken before the pool exists, so queues that allocate their whole
    // capacity up front (a bounded array channel) are charged for it.
    let before = rss_bytes("VmRSS:");
    let mut empty = 0;
    let mut full = 0;
    let collected = subject.hold(&batch, &mut |held| match held {
        Held::Empty => empty = rss_bytes("VmRSS:"),
        Held::Full => full = rss_bytes("VmRSS:"),
    })?;
    assert_eq!(
        collected,
        batch.jobs + batch.workers,
        "{}: results lost",
        subject.name()
    );
    let per_job = full.saturating_sub(before) as f64 / batch.jobs as f64;
    let job_size = subject.job_size() as f64;
    let mib = 1024.0 * 1024.0;
    Some(
        Sample::new(Workload::Memory.name(), subject.name(), 0)
            .with("rss_before_mib", before as f64 / mib)
            .with("rss_empty_mib", empty as f64 / mib)
            .with("rss_full_mib", full as f64 / mib)
            .with("peak_rss_mib", rss_bytes("VmHWM:") as f64 / mib)
            .with("bytes_per_job", per_job)
            .with("job_size", job_size)
            .with("overhead_per_job", per_job - job_size),
    )
}

/// The `p`-quantile (0..=1) of sorted values, nearest rank.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// A `/proc/self/status` size line (`VmRSS:`, `VmHWM:`) in bytes; 0 where unavailable.
fn rss_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// CPU time of every live thread of this process but the calling one (which measures), in
/// nanoseconds from the scheduler (`/proc/self/task/*/schedstat`): far finer than the 10 ms
/// ticks of `/proc/self/stat`.
fn process_cpu_time() -> Duration {
    let me = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|path| path.file_name().map(ToOwned::to_owned));
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .filter_map(Result::ok)
        .filter(|task| Some(task.file_name()) != me)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Wall time of a closure, for callers that time their own phases.
///
/// # Examples
///
/// ```
/// let (elapsed, value) = brigade_benches::stopwatch(|| 2 + 2);
/// assert_eq!(value, 4);
/// assert!(elapsed.as_secs() < 1);
/// ```
pub fn stopwatch<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let started = Instant::now();
    let value = f();
    (started.elapsed(), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[7], 0.99), 7.0);
    }

    #[test]
    fn reads_memory_and_other_threads_cpu() {
        assert!(rss_bytes("VmRSS:") > 0);
        let before = process_cpu_time();
        // Only live threads other than this one count: spin on one that stays alive.
        let (stop, parked) = std::sync::mpsc::channel::<()>();
        let busy = std::thread::spawn(move || {
            std::hint::black_box(crate::spin(1, 5_000_000));
            parked.recv().ok();
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(process_cpu_time() > before);
        drop(stop);
        busy.join().unwrap();
    }
}
