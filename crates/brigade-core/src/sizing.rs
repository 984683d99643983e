use std::num::NonZeroUsize;
use std::thread;

/// What limits a pool's work, for choosing how many workers it should have.
///
/// The advice of the classic worker-pool articles: size the pool by its bottleneck.
///
/// # Examples
///
/// ```
/// use brigade_core::Workload;
///
/// let cores = 8;
/// assert_eq!(Workload::CpuBound.workers_for(cores), 8);
/// assert_eq!(Workload::IoBound.workers_for(cores), 32);
/// assert_eq!(Workload::Mixed.workers_for(cores), 16);
/// assert_eq!(Workload::ExternalLimit(25).workers_for(cores), 25);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Jobs compute: one worker per core; more only adds switching.
    CpuBound,
    /// Jobs mostly wait on I/O: four workers per core keep the cores busy while others wait.
    IoBound,
    /// Jobs both compute and wait: two workers per core.
    Mixed,
    /// Jobs hold a scarce outside resource (database connections, an API's concurrent
    /// calls): as many workers as there are units of it, whatever the core count.
    ExternalLimit(usize),
}

impl Workload {
    /// The recommended worker count on a machine with `cores` cores (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::Workload::CpuBound.workers_for(0), 1);
    /// ```
    #[must_use]
    pub fn workers_for(self, cores: usize) -> usize {
        let cores = cores.max(1);
        let workers = match self {
            Workload::CpuBound => cores,
            Workload::IoBound => cores.saturating_mul(4),
            Workload::Mixed => cores.saturating_mul(2),
            Workload::ExternalLimit(units) => units,
        };
        workers.max(1)
    }

    /// The recommended worker count on this machine.
    ///
    /// # Examples
    ///
    /// ```
    /// let workers = brigade_core::Workload::IoBound.recommended_workers();
    /// assert!(workers >= 4);
    /// ```
    #[must_use]
    pub fn recommended_workers(self) -> usize {
        self.workers_for(available_cores())
    }
}

/// The cores this process may use (1 when the system cannot tell).
///
/// # Examples
///
/// ```
/// assert!(brigade_core::available_cores() >= 1);
/// ```
#[must_use]
pub fn available_cores() -> usize {
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}
