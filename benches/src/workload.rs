use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The workloads of design.md "Performance", plus `idle`.
///
/// # Examples
///
/// ```
/// use brigade_benches::{Scale, Workload};
///
/// let noop: Workload = "noop".parse().unwrap();
/// assert_eq!(noop.jobs(Scale::Full), 1_000_000);
/// assert_eq!(noop.to_string(), "noop");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// 1,000,000 jobs that return their input: dispatch cost per job.
    Noop,
    /// 200,000 jobs of ~200 multiply-adds: small CPU jobs.
    Spin,
    /// 20,000 jobs of ~10 µs: parallel speed-up.
    Cpu,
    /// 10,000 jobs of 1 ms on 100 workers: makespan against the ideal 100 ms.
    Sleep,
    /// Submit → start delay, p50 / p99, with submissions paced at half the subject's capacity.
    Latency,
    /// 1,000,000 jobs queued behind blocked workers: peak RSS and bytes per queued job.
    Memory,
    /// The noop workload through retry + unlimited rate limit + drop layers, and without the
    /// rate limit, against bare.
    Middleware,
    /// CPU time an idle pool burns per second.
    Idle,
}

/// How big the workloads are: `Full` is design.md's sizes, `Quick` a smoke-test size.
///
/// # Examples
///
/// ```
/// use brigade_benches::{Scale, Workload};
///
/// assert!(Workload::Noop.jobs(Scale::Quick) < Workload::Noop.jobs(Scale::Full));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scale {
    /// design.md's sizes.
    Full,
    /// Small enough that every workload on every subject runs in seconds.
    Quick,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 8] = [
        Workload::Noop,
        Workload::Spin,
        Workload::Cpu,
        Workload::Sleep,
        Workload::Latency,
        Workload::Middleware,
        Workload::Memory,
        Workload::Idle,
    ];

    /// The name used on the command line and in reports.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_benches::Workload::Cpu.name(), "cpu");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Workload::Noop => "noop",
            Workload::Spin => "spin",
            Workload::Cpu => "cpu",
            Workload::Sleep => "sleep",
            Workload::Latency => "latency",
            Workload::Memory => "memory",
            Workload::Middleware => "middleware",
            Workload::Idle => "idle",
        }
    }

    /// Jobs per run at `scale` (for `idle`, the number of workers' warm-up jobs: 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::{Scale, Workload};
    ///
    /// assert_eq!(Workload::Sleep.jobs(Scale::Full), 10_000);
    /// ```
    #[must_use]
    pub fn jobs(self, scale: Scale) -> usize {
        let (full, quick) = match self {
            Workload::Noop | Workload::Middleware | Workload::Memory => (1_000_000, 20_000),
            Workload::Spin => (200_000, 10_000),
            Workload::Cpu => (20_000, 1_000),
            Workload::Sleep => (10_000, 500),
            Workload::Latency => (10_000, 500),
            Workload::Idle => (0, 0),
        };
        match scale {
            Scale::Full => full,
            Scale::Quick => quick,
        }
    }

    /// Workers (concurrency) per run: 100 for `sleep`, the machine's parallelism otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_benches::Workload::Sleep.workers(), 100);
    /// ```
    #[must_use]
    pub fn workers(self) -> usize {
        match self {
            Workload::Sleep => 100,
            _ => crate::available_parallelism(),
        }
    }

    /// How long the idle workload watches an idle pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::{Scale, Workload};
    ///
    /// assert_eq!(Workload::idle_window(Scale::Full).as_secs(), 1);
    /// ```
    #[must_use]
    pub fn idle_window(scale: Scale) -> Duration {
        match scale {
            Scale::Full => Duration::from_secs(1),
            Scale::Quick => Duration::from_millis(200),
        }
    }

    /// The metric the report's table ranks subjects by, its unit, and how to read it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_benches::Workload::Noop.primary_metric(), ("seconds", "s"));
    /// ```
    #[must_use]
    pub fn primary_metric(self) -> (&'static str, &'static str) {
        match self {
            Workload::Latency => ("p99_us", "µs"),
            Workload::Memory => ("bytes_per_job", "B"),
            Workload::Idle => ("cpu_ms_per_s", "ms/s"),
            _ => ("seconds", "s"),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Workload::ALL
            .into_iter()
            .find(|workload| workload.name() == s)
            .ok_or_else(|| format!("unknown workload `{s}`"))
    }
}
