//! Duplicate runs: every run of a job after its first, explained by a fault or not.
//!
//! A run `r` that follows run `p` of the same job is explained when, between `p`'s start
//! and `r`'s start, `p`'s worker was killed, aborted, paused or cut off, or the database
//! crashed (the contracts allow a redelivery then), or when `p` was stopped by its token
//! (its lease was lost). Failing that, a duplicate that does not overlap `p` is explained
//! when `p`'s worker counted, in that time, a lost lease, an end it could not record or a
//! refused ack: a store call that timed out on a busy machine costs a lease, which the
//! contracts also allow. A duplicate that overlaps `p` on another, healthy worker is never
//! explained: two holders at once is what fencing exists to prevent.

use std::collections::BTreeMap;

use super::evidence::{End, Evidence, Run};

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
