//! Workloads and subjects shared by brigade's criterion benches and `cargo xtask bench`, so
//! both report numbers from the same code.
//!
//! A [`Subject`] is a pool under measurement, written the way its users write it; a
//! [`Workload`] is one row of design.md's "Performance" table; [`measure`] runs one on the
//! other and returns a [`Sample`]. The `brigade-bench` binary interleaves subjects over rounds
//! and prints samples as JSON lines for the xtask.
//!
//! ```
//! use brigade_benches::{Calibration, Scale, Workload, all_subjects, measure};
//!
//! let calibration = Calibration { cpu_rounds: 100, latency_rounds: 1_000, sleep_us: 1000.0 };
//! for subject in all_subjects() {
//!     if subject.supports(Workload::Noop) {
//!         let sample = measure(Workload::Noop, subject.as_ref(), Scale::Quick, calibration, None, 0);
//!         println!("{}: {:.3} s", sample.subject, sample.metrics["seconds"]);
//!     }
//! }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
pub mod durable;
mod measure;
mod subject;
mod subjects;
mod work;
mod workload;

pub use batch::{Batch, Inputs, QUEUE_CAPACITY, available_parallelism};
pub use measure::{
    CPU_JOB, Calibration, LATENCY_JOB, SLEEP_JOB, SPIN_ROUNDS, Sample, half_load_pace, measure,
    measure_memory, stopwatch, throughput_batch,
};
pub use subject::{Held, Run, Subject};
#[cfg(feature = "metrics")]
pub use subjects::BrigadeThreadMetrics;
pub use subjects::{
    BrigadeThread, BrigadeThreadExecute, BrigadeThreadMap, BrigadeTokio, BrigadeTokioExecute,
    BrigadeTokioMap, CrossbeamPool, FuturesBuffered, RayonSpawn, Stack, ThreadpoolCrate,
    TokioJoinSet, TokioMpscPool, middleware_stack, unbiting_rate_limit,
};
pub use work::{BenchJob, Gate, Work, calibrate_spin, clock_ns, spin};
pub use workload::{Scale, Workload};

/// Every subject, brigade's first: the order of the report's columns.
///
/// # Examples
///
/// ```
/// let names: Vec<_> = brigade_benches::all_subjects().iter().map(|s| s.name()).collect();
/// assert!(names.contains(&"crossbeam-pool"));
/// ```
#[must_use]
pub fn all_subjects() -> Vec<Box<dyn Subject>> {
    vec![
        Box::new(BrigadeThread::default()),
        Box::new(BrigadeThread { stack: Stack::Full }),
        Box::new(BrigadeThread {
            stack: Stack::WithoutRateLimit,
        }),
        Box::new(BrigadeThreadMap),
        Box::new(BrigadeThreadExecute),
        #[cfg(feature = "metrics")]
        Box::new(BrigadeThreadMetrics::new()),
        Box::new(BrigadeTokio::default()),
        Box::new(BrigadeTokio { stack: Stack::Full }),
        Box::new(BrigadeTokio {
            stack: Stack::WithoutRateLimit,
        }),
        Box::new(BrigadeTokioMap),
        Box::new(BrigadeTokioExecute),
        Box::new(CrossbeamPool),
        Box::new(ThreadpoolCrate),
        Box::new(RayonSpawn),
        Box::new(TokioMpscPool),
        Box::new(TokioJoinSet),
        Box::new(FuturesBuffered),
    ]
}

/// The subject called `name`, if any.
///
/// # Examples
///
/// ```
/// assert!(brigade_benches::subject_named("rayon-spawn").is_some());
/// ```
#[must_use]
pub fn subject_named(name: &str) -> Option<Box<dyn Subject>> {
    all_subjects()
        .into_iter()
        .find(|subject| subject.name() == name)
}
