//! What a durable run measures, at which sizes.

use std::time::Duration;

use crate::Scale;

use super::DurableSubject;

/// One measurement of a durable run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measurement {
    /// Jobs enqueued up front, drained by `processes` worker processes; with `prefilled`
    /// finished rows already in brigade's table when it is not zero.
    Throughput {
        /// The queue measured.
        subject: DurableSubject,
        /// Worker processes draining the queue together.
        processes: usize,
        /// Finished rows put in the table before the run.
        prefilled: u64,
    },
    /// Jobs enqueued one at a time at a steady rate, picked up by one worker process.
    Latency {
        /// The queue measured.
        subject: DurableSubject,
    },
}

impl Measurement {
    /// The workload's name in reports.
    #[must_use]
    pub fn workload(&self) -> &'static str {
        match self {
            Measurement::Throughput { prefilled: 0, .. } => "throughput",
            Measurement::Throughput { .. } => "throughput-prefilled",
            Measurement::Latency { .. } => "latency",
        }
    }

    /// The queue measured.
    #[must_use]
    pub fn subject(&self) -> DurableSubject {
        match *self {
            Measurement::Throughput { subject, .. } | Measurement::Latency { subject } => subject,
        }
    }

    /// How many worker processes it runs.
    #[must_use]
    pub fn processes(&self) -> usize {
        match *self {
            Measurement::Throughput { processes, .. } => processes,
            Measurement::Latency { .. } => 1,
        }
    }
}

/// The sizes and the measurements of one durable run.
#[derive(Clone, Debug)]
pub struct DurablePlan {
    /// Jobs per throughput measurement.
    pub throughput_jobs: u64,
    /// Jobs per latency measurement.
    pub latency_jobs: u64,
    /// The steady enqueue rate of the latency workload, jobs/s: well under either
    /// subject's capacity, so the delay measured is pickup, not queueing.
    pub latency_rate: f64,
    /// Finished rows in the table for the claim-with-history row.
    pub prefilled_rows: u64,
    /// Jobs each worker process runs at once, the same for both subjects.
    pub concurrency: usize,
    /// The most any one load loop may take before the run fails.
    pub time_bound: Duration,
    /// Every measurement, in run order.
    pub measurements: Vec<Measurement>,
}

impl DurablePlan {
    /// Worker process counts of the throughput workload.
    pub const PROCESSES: [usize; 3] = [1, 2, 4];

    /// The plan at `scale`: throughput on 1, 2 and 4 processes for both subjects
    /// (alternating which goes first), brigade once more on a table holding finished
    /// rows, then pickup latency for both.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::Scale;
    /// use brigade_benches::durable::DurablePlan;
    ///
    /// let plan = DurablePlan::new(Scale::Quick);
    /// assert_eq!(plan.measurements.len(), 9);
    /// ```
    #[must_use]
    pub fn new(scale: Scale) -> Self {
        let quick = scale == Scale::Quick;
        let mut measurements = Vec::new();
        for (round, processes) in Self::PROCESSES.into_iter().enumerate() {
            let mut subjects = DurableSubject::ALL;
            if round % 2 == 1 {
                subjects.reverse();
            }
            measurements.extend(subjects.map(|subject| Measurement::Throughput {
                subject,
                processes,
                prefilled: 0,
            }));
        }
        let prefilled_rows = if quick { 100_000 } else { 1_000_000 };
        measurements.push(Measurement::Throughput {
            subject: DurableSubject::Brigade,
            processes: 1,
            prefilled: prefilled_rows,
        });
        measurements.extend(DurableSubject::ALL.map(|subject| Measurement::Latency { subject }));
        DurablePlan {
            throughput_jobs: if quick { 2_000 } else { 20_000 },
            latency_jobs: if quick { 1_000 } else { 5_000 },
            latency_rate: 500.0,
            prefilled_rows,
            concurrency: 16,
            time_bound: Duration::from_secs(if quick { 60 } else { 180 }),
            measurements,
        }
    }
}
