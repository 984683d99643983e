//! The global limits, held against the runs every worker wrote.
//!
//! Concurrency: a run counts from its `start` line until its `done` / `cancelled` line,
//! or until its worker was paused, cut off, killed or aborted, whichever is first. From
//! that moment the store, not the run, decides who holds its units (they return when the
//! lease expires), and what a zombie does after SIGCONT is the refused duplicate counted
//! elsewhere. A poison run counts for no time at all: it aborts on its first line.
//!
//! Rate: the starts in every one-second window, against `rate + burst`. The worker takes
//! its units of the concurrency limit first and the rate token last, on the store's clock,
//! and writes `start` after that round trip returns; the allowance adds the tokens of
//! 50 ms at the rate for that skew (the ledgers' clock itself resolves microseconds).

use super::evidence::{End, Evidence};
use crate::settings;

/// Microseconds in the rate window.
const WINDOW: u64 = 1_000_000;
/// The grant-to-start skew the rate allowance covers.
const SKEW: u64 = 50_000;

/// The observed peaks and their bounds.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) max_running: usize,
    pub(crate) units: usize,
    pub(crate) max_starts_per_window: usize,
    pub(crate) rate_allowance: usize,
    /// Where the peak of starts was (ledger µs).
    pub(crate) busiest_window: u64,
}

impl Limits {
    pub(crate) fn concurrency_held(&self) -> bool {
        self.max_running <= self.units
    }

    pub(crate) fn rate_held(&self) -> bool {
        self.max_starts_per_window <= self.rate_allowance
    }
}

pub(crate) fn measure(evidence: &Evidence) -> Limits {
    // (time, +1 start / -1 end); ends sort before starts at the same instant.
    let mut edges: Vec<(u64, i32)> = Vec::with_capacity(evidence.runs.len() * 2);
    for run in &evidence.runs {
        let end = if run.poison {
            run.start
        } else {
            let ended = run.end.map_or(u64::MAX, End::at);
            let outage = evidence
                .faults
                .first_outage_after(&run.process, run.start)
                .unwrap_or(u64::MAX);
            ended.min(outage)
        };
        edges.push((run.start, 1));
        edges.push((end, -1));
    }
    edges.sort();
    let mut running = 0i64;
    let mut max_running = 0i64;
    for (_, delta) in edges {
        running += i64::from(delta);
        max_running = max_running.max(running);
    }

    let starts: Vec<u64> = evidence.runs.iter().map(|run| run.start).collect();
    let mut max_starts = 0;
    let mut busiest = 0;
    let mut first = 0;
    for (last, &t) in starts.iter().enumerate() {
        while starts[first] + WINDOW <= t {
            first += 1;
        }
        if last + 1 - first > max_starts {
            max_starts = last + 1 - first;
            busiest = starts[first];
        }
    }
    let rate = u64::from(settings::RATE_PER_SECOND);
    let allowance = rate * WINDOW / 1_000_000
        + u64::from(settings::RATE_BURST)
        + (rate * SKEW).div_ceil(1_000_000);
    Limits {
        max_running: usize::try_from(max_running).unwrap_or(usize::MAX),
        units: settings::UNITS as usize,
        max_starts_per_window: max_starts,
        rate_allowance: usize::try_from(allowance).unwrap_or(usize::MAX),
        busiest_window: busiest,
    }
}
