//! Duplicate runs: every run of a job after its first, explained by a fault or not.
//!
//! Each pair of consecutive runs `p`, `r` of a job (by start) is judged in this order:
//!
//! 1. **Two holders at once.** If `p` was still running when `r` started — on any worker,
//!    its own host included — the pair is explained only as a SIGSTOP zombie: `p`'s process
//!    was paused while `p` ran and before `r` started, and `p` ended within a lease of
//!    SIGCONT (its fence, or its work, ended it on waking); or `r` holds the older claim and
//!    started within a lease of its process's SIGCONT (it waited at the gate through the
//!    pause). A stall of the whole host counts as a pause of every process (the VM
//!    descheduled longer than a lease, seen in every ledger's silence:
//!    [`host_stalls`](super::evidence::host_stalls)).
//!    A run counts as running until its `done` / `cancelled` line, or without one
//!    until its process was killed, aborted, paused or cut off. With Redis on `appendfsync
//!    everysec`, a store crash while `p` ran also explains it: the crash may take the
//!    renewal that kept `p`'s lease.
//! 2. **Its lease was lost, or it was given back.** `p` ended `cancelled`: its fence
//!    stopped it, or its worker's graceful stop (SIGTERM) did at the grace.
//! 3. **It failed on purpose.** `p` ended `failed` (its job fails that attempt): the store
//!    retried it.
//! 4. **A fault while `p` or its ack was in flight.** A fault of `p`'s process (kill,
//!    abort, exit, pause, link down), a store crash or a stall of the whole host that began
//!    after `p` started, before `r` started, and no later than one ack window after `p` ended
//!    ([`settings::ack_window`]; without an end, any time before `r`). A graceful exit is no
//!    such fault: the worker records every end before it exits.
//! 5. **A late start after a pause.** `r` holds the older claim and its process was paused
//!    within two leases before `p` started and up to `r`'s start.
//! 6. **A lost lease or an ack not recorded, counted.** `p`'s process counted a lost lease,
//!    an unrecorded end or a refused ack between `p`'s start and the end of its ack window
//!    (or `r`'s start, without an end): a store call that timed out on a busy machine costs
//!    a lease, which the contracts allow.
//!
//! Anything else is unexplained: a completed job run again with no fault near it, or two
//! holders at once outside a pause.

use std::collections::BTreeMap;

use super::evidence::{End, Evidence, GRACEFUL_EXIT, Run, Span};
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
                    "job {} (n={}): run {} on {} at {} ({}) then run {} on {} at {}{}",
                    previous.job,
                    previous.n,
                    previous.attempt,
                    previous.process,
                    previous.start,
                    match previous.end {
                        Some(End::Done(t)) => format!("done at {t}"),
                        Some(End::Failed(t)) => format!("failed at {t}"),
                        Some(End::Cancelled(t)) => format!("cancelled at {t}"),
                        None => "no end".to_owned(),
                    },
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
    let lease = micros(settings::LEASE);
    let faults = &evidence.faults;
    // The older claim was taken before `previous` started, at most a lease before it
    // (a claim's lease runs out by then); its pause began after that.
    let claimed_since = previous.start.saturating_sub(2 * lease);
    if overlaps(evidence, previous, next) {
        // Paused while it ran, before the other start, and ended within a lease of waking.
        let held_through = |span: &Span| {
            span.from >= previous.start
                && span.from <= next.start
                && previous
                    .end
                    .is_some_and(|end| end.at() <= span.to.saturating_add(lease))
        };
        let zombie = faults
            .pauses
            .iter()
            .any(|(process, span)| process == &previous.process && held_through(span));
        if zombie {
            return Some("paused holder ran on after SIGCONT");
        }
        if evidence.host_stalls.iter().any(held_through) {
            return Some("the whole host stalled past a lease");
        }
        if next.attempt < previous.attempt && started_after_pause(evidence, next, claimed_since) {
            return Some("older claim started after its worker's pause");
        }
        let lost_renewal = evidence.lossy_fsync()
            && faults
                .db
                .iter()
                .any(|span| span.meets(previous.start, next.start));
        return lost_renewal.then_some("store crash (everysec lost a renewal)");
    }
    if let Some(End::Cancelled(stopped)) = previous.end {
        let given_back = faults
            .terms
            .iter()
            .any(|term| term.process == previous.process && term.t <= stopped);
        return Some(if given_back {
            "given back at a graceful restart"
        } else {
            "lease lost, run stopped"
        });
    }
    if matches!(previous.end, Some(End::Failed(_))) {
        return Some("failed on purpose, retried");
    }
    // From `previous`'s start to the moment its ack was settled, at the latest.
    let in_flight_to = previous
        .end
        .map_or(next.start, |end| {
            end.at().saturating_add(micros(settings::ack_window()))
        })
        .min(next.start);
    if let Some((_, cause)) = faults
        .troubles_of(&previous.process)
        .into_iter()
        .find(|(span, what)| *what != GRACEFUL_EXIT && span.meets(previous.start, in_flight_to))
    {
        return Some(cause);
    }
    if evidence
        .host_stalls
        .iter()
        .any(|span| span.meets(previous.start, in_flight_to))
    {
        return Some("the whole host stalled past a lease");
    }
    if next.attempt < previous.attempt && started_after_pause(evidence, next, claimed_since) {
        return Some("older claim started after its worker's pause");
    }
    let counters = evidence.counters.get(&previous.process)?;
    let before = counters
        .iter()
        .take_while(|line| line.t <= previous.start)
        .last()
        .map_or(0, |line| line.troubled);
    let settled = previous.end.map_or(next.start, |end| {
        end.at().saturating_add(micros(settings::ack_window()))
    });
    let after = counters
        .iter()
        .find(|line| line.t >= settled)
        .or(counters.last())
        .map_or(0, |line| line.troubled);
    (after > before).then_some("lease lost or ack not recorded")
}

/// Whether `run`'s process was paused in a span that meets `since`..`run.start` and ended
/// no more than a lease before `run` started: a claim taken before the pause, started on
/// waking.
fn started_after_pause(evidence: &Evidence, run: &Run, since: u64) -> bool {
    let lease = micros(settings::LEASE);
    evidence.faults.pauses.iter().any(|(process, span)| {
        process == &run.process
            && span.meets(since, run.start)
            && span.to <= run.start
            && run.start <= span.to.saturating_add(lease)
    })
}

/// Whether `previous` was still running when `next` started, on whichever worker: until
/// its end, or without one until its process stopped serving it.
fn overlaps(evidence: &Evidence, previous: &Run, next: &Run) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::evidence::{Counters, Kill, Span};

    fn span(from: u64, to: u64) -> Span {
        Span { from, to }
    }

    const S: u64 = 1_000_000;

    fn run(job: i64, attempt: u32, process: &str, start: u64, end: Option<End>) -> Run {
        Run {
            job,
            n: 1,
            attempt,
            process: process.to_owned(),
            start,
            end,
            poison: false,
            work_ms: Some(20),
        }
    }

    fn judge(evidence: &Evidence) -> Duplicates {
        classify(evidence)
    }

    fn done_then_rerun(rerun_at: u64) -> Evidence {
        let mut evidence = Evidence::default();
        evidence
            .runs
            .push(run(1, 1, "w1#1", 10 * S, Some(End::Done(10 * S + 20_000))));
        evidence.runs.push(run(1, 2, "w2#1", rerun_at, None));
        evidence
    }

    #[test]
    fn a_kill_long_after_the_ack_does_not_explain_a_rerun() {
        let mut evidence = done_then_rerun(40 * S);
        evidence.faults.kills.push(Kill {
            process: "w1#1".to_owned(),
            t: 30 * S,
            of_all: false,
        });
        assert_eq!(judge(&evidence).unexplained.len(), 1);
        // Within the ack window it does: the ack may not have been recorded.
        evidence.faults.kills[0].t = 11 * S;
        let found = judge(&evidence);
        assert!(found.unexplained.is_empty(), "{:?}", found.unexplained);
    }

    #[test]
    fn a_store_crash_explains_only_runs_or_acks_it_met() {
        let mut evidence = done_then_rerun(40 * S);
        evidence.faults.db.push(span(30 * S, 31 * S));
        assert_eq!(judge(&evidence).unexplained.len(), 1);
        evidence.faults.db[0] = span(12 * S, 13 * S);
        assert!(judge(&evidence).unexplained.is_empty());
    }

    #[test]
    fn two_holders_at_once_are_never_explained_by_a_fault() {
        // w1#1 still runs when w1#1 itself starts the job again (same host), and a kill
        // of w1#1 follows: the kill does not explain the overlap.
        let mut evidence = Evidence::default();
        evidence
            .runs
            .push(run(1, 1, "w1#1", 10 * S, Some(End::Done(13 * S))));
        evidence
            .runs
            .push(run(1, 2, "w1#1", 12 * S, Some(End::Done(12 * S + 50_000))));
        evidence.faults.kills.push(Kill {
            process: "w1#1".to_owned(),
            t: 13 * S + 10,
            of_all: false,
        });
        let found = judge(&evidence);
        assert_eq!(found.unexplained.len(), 1, "{:?}", found.explained);
        assert!(found.unexplained[0].ends_with("overlapping"));
    }

    #[test]
    fn a_stalled_host_explains_a_holder_that_ends_within_a_lease_of_waking() {
        // Seed 746404 on Redis: every ledger silent 4.9 s, the job taken back by a sweep as
        // the host woke, its holder done 0.2 s later with its ack refused.
        let mut evidence = Evidence::default();
        evidence.runs.push(run(
            1,
            1,
            "w4#22",
            10 * S,
            Some(End::Done(15 * S + 600_000)),
        ));
        evidence
            .runs
            .push(run(1, 2, "w2#16", 15 * S + 430_000, None));
        assert_eq!(judge(&evidence).unexplained.len(), 1);
        evidence
            .host_stalls
            .push(span(10 * S + 500_000, 15 * S + 400_000));
        let found = judge(&evidence);
        assert!(found.unexplained.is_empty(), "{:?}", found.unexplained);
        assert_eq!(
            found.explained.get("the whole host stalled past a lease"),
            Some(&1)
        );
        // A holder running on a lease and more after the host woke has no such excuse.
        evidence.runs[0].end = Some(End::Done(18 * S));
        assert_eq!(judge(&evidence).unexplained.len(), 1);
    }

    #[test]
    fn a_paused_holder_may_finish_on_waking() {
        let mut evidence = Evidence::default();
        evidence
            .runs
            .push(run(1, 1, "w1#1", 10 * S, Some(End::Done(13 * S + 5_000))));
        evidence.runs.push(run(
            1,
            2,
            "w2#1",
            12 * S + 600_000,
            Some(End::Done(12 * S + 700_000)),
        ));
        evidence
            .faults
            .pauses
            .push(("w1#1".to_owned(), span(10 * S + 100, 13 * S)));
        assert!(judge(&evidence).unexplained.is_empty());
        // Running on a lease and more after SIGCONT is no zombie: its fence failed.
        evidence.runs[0].end = Some(End::Done(16 * S));
        assert_eq!(judge(&evidence).unexplained.len(), 1);
    }

    #[test]
    fn a_graceful_exit_explains_no_rerun_but_a_planned_failure_does() {
        // w1#1 finished the job, then exited with status 0 (a graceful restart): its end
        // was recorded before it exited, so a rerun is a lost ack.
        let mut evidence = done_then_rerun(12 * S);
        evidence
            .faults
            .exits
            .push(("w1#1".to_owned(), 10 * S + 500_000, "exit:0".to_owned()));
        evidence.faults.index_deaths();
        assert_eq!(judge(&evidence).unexplained.len(), 1);
        // A crash there would explain it.
        evidence.faults.exits[0].2 = "signal:11".to_owned();
        assert!(judge(&evidence).unexplained.is_empty());
        // So does a planned failure: the store retries the job.
        let mut evidence = done_then_rerun(12 * S);
        evidence.runs[0].end = Some(End::Failed(10 * S + 20_000));
        let found = judge(&evidence);
        assert_eq!(found.explained.get("failed on purpose, retried"), Some(&1));
    }

    #[test]
    fn a_counted_lost_lease_explains_only_within_the_ack_window() {
        let counters = |t: u64, troubled: u64| Counters {
            t,
            troubled,
            stale: 0,
            unrecorded: troubled,
            last: false,
            retried: 0,
            released: 0,
            completed: 0,
            dead: 0,
        };
        let mut evidence = done_then_rerun(40 * S);
        evidence.counters.insert(
            "w1#1".to_owned(),
            vec![counters(9 * S, 0), counters(11 * S, 1), counters(39 * S, 1)],
        );
        assert!(judge(&evidence).unexplained.is_empty());
        // Counted long after the ack was settled: another job's trouble.
        evidence.counters.insert(
            "w1#1".to_owned(),
            vec![counters(9 * S, 0), counters(20 * S, 0), counters(39 * S, 1)],
        );
        assert_eq!(judge(&evidence).unexplained.len(), 1);
    }
}
