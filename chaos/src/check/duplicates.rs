//! Duplicate runs: every run of a job after its first, explained by a fault or not.
//!
//! A run `r` that follows run `p` of the same job is explained when, between `p`'s start
//! and `r`'s start, `p`'s worker was killed, aborted, paused or cut off, or the database
//! crashed (the contracts allow a redelivery then), or when `p` was stopped by its token
//! (its lease was lost). Failing that, a duplicate that does not overlap `p` is explained
//! when `p`'s worker counted, in that time, a lost lease, an end it could not record or a
//! refused ack: a store call that timed out on a busy machine costs a lease, which the
//! contracts also allow. Runs are ordered by start, so a claim can start after a newer
//! claim of the same job: a worker paused (or cut off) while a claimed run waited at the
//! gate starts it when it wakes, before its fence notices the lost lease. That late start
//! is explained by its own worker's fault; its end is refused like any zombie's. A duplicate that overlaps `p` on another, healthy worker is never
//! explained: two holders at once is what fencing exists to prevent.

use std::collections::BTreeMap;

use super::evidence::{End, Evidence, Run};
use crate::settings;

fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The duplicate runs, sorted out.
#[derive(Debug, Default)]
pub(crate) struct Duplicates {
    /// Explained duplicates by cause.
    pub(crate) explained: BTreeMap<&'static str, usize>,
    /// The unexplained ones, as readable evidence.
    pub(crate) unexplained: Vec<String>,
}

impl Duplicates {
    pub(crate) fn explained_total(&self) -> usize {
        self.explained.values().sum()
    }
}

pub(crate) fn classify(evidence: &Evidence) -> Duplicates {
    let mut by_job: BTreeMap<i64, Vec<&Run>> = BTreeMap::new();
    for run in &evidence.runs {
        by_job.entry(run.job).or_default().push(run);
    }
    let mut duplicates = Duplicates::default();
    for runs in by_job.values() {
        for pair in runs.windows(2) {
            let (previous, next) = (pair[0], pair[1]);
            match explain(evidence, previous, next) {
                Some(cause) => *duplicates.explained.entry(cause).or_default() += 1,
                None => duplicates.unexplained.push(format!(
                    "job {} (n={}): run {} on {} at {} then run {} on {} at {}{}",
                    previous.job,
                    previous.n,
                    previous.attempt,
                    previous.process,
                    previous.start,
                    next.attempt,
                    next.process,
                    next.start,
                    if overlaps(evidence, previous, next) {
                        ", overlapping"
                    } else {
                        ""
                    }
                )),
            }
        }
    }
    duplicates
}

fn explain(evidence: &Evidence, previous: &Run, next: &Run) -> Option<&'static str> {
    if let Some((_, cause)) = evidence
        .faults
        .troubles_of(&previous.process)
        .into_iter()
        .find(|(span, _)| span.meets(previous.start, next.start))
    {
        return Some(cause);
    }
    if matches!(previous.end, Some(End::Cancelled(_))) {
        return Some("lease lost, run stopped");
    }
    if next.attempt < previous.attempt {
        // `next` holds the older claim yet started later: its worker lost the lease while
        // the run waited (at the gate, or frozen), and started it once it could act again.
        let since = previous.start.saturating_sub(2 * micros(settings::LEASE));
        if let Some((_, cause)) = evidence
            .faults
            .troubles_of(&next.process)
            .into_iter()
            // The latest: the fault the late start followed.
            .rev()
            .find(|(span, _)| span.meets(since, next.start))
        {
            return Some(match cause {
                "paused" => "older claim started after its worker's pause",
                "link down" => "older claim started after its worker's link came back",
                "db crash" => "older claim started after the db restart",
                _ => "older claim started late after a fault",
            });
        }
    }
    if overlaps(evidence, previous, next) {
        return None;
    }
    let counters = evidence.counters.get(&previous.process)?;
    let before = counters
        .iter()
        .take_while(|line| line.t <= previous.start)
        .last()
        .map_or(0, |line| line.troubled);
    let after = counters
        .iter()
        .find(|line| line.t >= next.start)
        .or(counters.last())
        .map_or(0, |line| line.troubled);
    (after > before).then_some("lease lost or ack not recorded")
}

/// Whether `previous` was still running on another worker when `next` started.
fn overlaps(evidence: &Evidence, previous: &Run, next: &Run) -> bool {
    if previous.host() == next.host() {
        return false;
    }
    let end = previous
        .end
        .map(End::at)
        .or_else(|| {
            evidence
                .faults
                .first_outage_after(&previous.process, previous.start)
        })
        .unwrap_or(u64::MAX);
    end > next.start
}
