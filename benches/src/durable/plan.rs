//! What a durable run measures, at which sizes.

use std::time::Duration;

use crate::Scale;

use super::{DurableSubject, Engine, Side};

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
    /// (Both variants name the subject, engine and side.)
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
    /// Jobs per throughput measurement, where the engine allows as many
    /// ([`DurablePlan::throughput_jobs_on`]).
    pub throughput_jobs: u64,
    /// Jobs per latency measurement.
    pub latency_jobs: u64,
    /// The steady enqueue rate of the latency workload, jobs/s: well under either
    /// subject's capacity, so the delay measured is pickup, not queueing.
    pub latency_rate: f64,
    /// Finished rows in brigade's PostgreSQL table for the claim-with-history row.
    pub prefilled_rows: u64,
    /// Jobs each worker process runs at once, the same for every subject.
    pub concurrency: usize,
    /// The most any one load loop may take: a throughput row that overruns it reports the
    /// jobs it finished within it; any other overrun fails the run.
    pub time_bound: Duration,
    /// Every measurement, in run order.
    pub measurements: Vec<Measurement>,
}

impl DurablePlan {
    /// Jobs per throughput measurement on `engine`: the plan's size, capped at the most a
    /// row may enqueue up front there ([`Engine::max_backlog`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::Scale;
    /// use brigade_benches::durable::{DurablePlan, Engine};
    ///
    /// let plan = DurablePlan::new(Scale::Full, &Engine::ALL);
    /// assert_eq!(plan.throughput_jobs_on(Engine::Postgres), 20_000);
    /// assert_eq!(plan.throughput_jobs_on(Engine::Redis), 7_500);
    /// ```
    #[must_use]
    pub fn throughput_jobs_on(&self, engine: Engine) -> u64 {
        self.throughput_jobs.min(engine.max_backlog())
    }

    /// The plan at `scale` for `engines`, engine after engine: throughput on each of the
    /// engine's process counts for both sides (alternating which goes first), brigade once
    /// more on a PostgreSQL table holding finished rows, then pickup latency for both.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::Scale;
    /// use brigade_benches::durable::{DurablePlan, Engine};
    ///
    /// let plan = DurablePlan::new(Scale::Quick, &[Engine::Postgres]);
    /// assert_eq!(plan.measurements.len(), 9);
    /// let plan = DurablePlan::new(Scale::Quick, &[Engine::Sqlite]);
    /// assert_eq!(plan.measurements.len(), 6);
    /// ```
    #[must_use]
    pub fn new(scale: Scale, engines: &[Engine]) -> Self {
        let quick = scale == Scale::Quick;
        let prefilled_rows = if quick { 100_000 } else { 1_000_000 };
        let mut measurements = Vec::new();
        for &engine in engines {
            let subject = |side| DurableSubject { engine, side };
            for (round, &processes) in engine.processes().iter().enumerate() {
                let mut sides = Side::ALL;
                if round % 2 == 1 {
                    sides.reverse();
                }
                measurements.extend(sides.map(|side| Measurement::Throughput {
                    subject: subject(side),
                    processes,
                    prefilled: 0,
                }));
            }
            if engine.measures_history() {
                measurements.push(Measurement::Throughput {
                    subject: subject(Side::Brigade),
                    processes: 1,
                    prefilled: prefilled_rows,
                });
            }
            if engine.measures_latency() {
                measurements.extend(Side::ALL.map(|side| Measurement::Latency {
                    subject: subject(side),
                }));
            }
        }
        DurablePlan {
            throughput_jobs: if quick { 2_000 } else { 20_000 },
            latency_jobs: if quick { 1_000 } else { 5_000 },
            latency_rate: 500.0,
            prefilled_rows,
            concurrency: 16,
            // Every row but apalis-sqlite's drains in under 30 s here; a row that overruns
            // reports what it finished within the bound.
            time_bound: Duration::from_secs(60),
            measurements,
        }
    }
}
