//! Delivery: every promise kept, kept once in the store, in time after a kill or a
//! graceful restart, failures retried or buried as planned, poison ended, partitioned runs
//! fenced.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::evidence::{Counters, End, Evidence, Run};
use crate::job::ALWAYS;
use crate::settings;

/// How long after the lease of a cut-off run could have run out its `cancelled` line may
/// come. The line is written by the run's task once the fence has cancelled its token: one
/// task wake-up and one `write(2)` on a machine whose two cores the server, the producer
/// and four workers share. The worker fences a quarter lease (500 ms) before the lease
/// ends, so a worker that fences at all is well inside this; it only absorbs the write.
pub(crate) const FENCE_SEEN_WITHIN: Duration = Duration::from_millis(250);

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// What the delivery checks found; the `Vec<String>`s hold readable evidence.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    pub(crate) enqueued: usize,
    pub(crate) completed: usize,
    pub(crate) dead: usize,
    /// Acknowledged enqueues missing from the table or not in a terminal state.
    pub(crate) lost: Vec<String>,
    /// Rows, acknowledged or not, that are not in a terminal state after the drain.
    pub(crate) not_terminal: Vec<String>,
    /// Rows cancelled: nothing in the harness cancels a job.
    pub(crate) cancelled: Vec<String>,
    /// Rows whose payload's `n` is not the one their enqueue was acknowledged for.
    pub(crate) n_differs: Vec<String>,
    /// Rows no acknowledgement covers (the answer to a committed enqueue was lost).
    pub(crate) unacknowledged_rows: usize,
    /// Jobs of a rolled-back transaction found in the table.
    pub(crate) rolled_back_present: Vec<String>,
    /// Jobs of a transaction the producer was killed inside, found in the table.
    pub(crate) killed_in_tx_present: Vec<String>,
    /// Completed rows with no run that finished its work after the last run of theirs that
    /// was stopped (a stopped run's job was given back, or its lease lost: only a later
    /// finished run can have completed it).
    pub(crate) completed_unrun: Vec<String>,
    /// Jobs that never fail, yet dead.
    pub(crate) dead_healthy: Vec<String>,
    /// Jobs that fail their first attempt on purpose, and those not completed at a later
    /// attempt by a run of that attempt that finished.
    pub(crate) fails_first: usize,
    pub(crate) fails_first_wrong: Vec<String>,
    /// Jobs that fail every run, and those not dead after exactly their attempts.
    pub(crate) always_failing: usize,
    pub(crate) always_failing_wrong: Vec<String>,
    /// Graceful restarts: runs their worker held at the SIGTERM; of those, stopped at the
    /// grace (and so given back); those that started again (µs from the stop to the next
    /// start); what went wrong (a run left without an end, one that ran past the grace,
    /// a job given back and never started again).
    pub(crate) restart_held: usize,
    pub(crate) restart_stopped: usize,
    /// Held runs whose process died otherwise before they ended (a poison job it had
    /// started just before the SIGTERM aborted it): the kill's checks hold those.
    pub(crate) restart_died: usize,
    pub(crate) restart_redeliveries: Vec<u64>,
    pub(crate) restart_wrong: Vec<String>,
    /// Graceful restarts whose SIGTERM stopped at least one run at the grace.
    pub(crate) restarts_stopping: usize,
    /// Claimed jobs the restarted workers gave back before they started: what their
    /// `released` counter grew by from the SIGTERM to their final line, less the runs
    /// stopped at the grace.
    pub(crate) restart_unstarted: u64,
    /// Poison jobs: how many, and those not dead after exactly their attempts.
    pub(crate) poison: usize,
    pub(crate) poison_wrong: Vec<String>,
    /// Redelivery after each kill: for each job held, µs from the kill to its next start.
    pub(crate) redeliveries: Vec<Redelivery>,
    pub(crate) not_redelivered: Vec<String>,
    /// Held jobs whose next claim was itself lost before a run started: not timed.
    pub(crate) reclaims_lost: usize,
    /// Runs open on a host when its link went down, and those not ended in time.
    pub(crate) cut_off_runs: usize,
    pub(crate) unfenced: Vec<String>,
    /// Cut-off runs whose work would have outlasted the lease: only their fence could end
    /// them in time. How many, and how many of those the fence stopped in time.
    pub(crate) past_lease: usize,
    pub(crate) past_lease_fenced: usize,
    /// Cut-off runs whose process died before their lease ran out (a poison job's abort).
    pub(crate) cut_off_died: usize,
    /// Link downs that cut off at least one run whose work would have outlasted the lease.
    pub(crate) links_past_lease: usize,
    /// Runs open on a process when it was paused; of those, stopped by their token after
    /// SIGCONT, and finished after SIGCONT although the job had started elsewhere (their
    /// acks must have been refused).
    pub(crate) paused_runs: usize,
    pub(crate) fenced_on_wake: usize,
    pub(crate) zombie_acks: usize,
    /// Zombie acks their process counted refused (`stale`): the cases that prove the check.
    pub(crate) zombie_acks_refused: usize,
    /// Zombie runs that failed after their worker knew the lease lost: such a run sends no
    /// retry at all (its process counted a lost lease), so there is no ack to refuse.
    pub(crate) zombie_acks_withheld: usize,
    /// Zombie acks the store took: more than the paused process counted as refused
    /// (`stale`) or unanswered (`unrecorded`), or one whose job only it could have completed.
    pub(crate) zombie_acks_taken: Vec<String>,
    /// Zombie acks whose answer is unknown: their process left no counters line the answers
    /// could have reached (it died within a store timeout of them), or counted them
    /// unanswered (`unrecorded`) and nothing shows the store took them.
    pub(crate) zombie_acks_unverified: usize,
    /// Links that came back with work left to take, and those whose host started a run
    /// afterwards.
    pub(crate) links: usize,
    pub(crate) rejoined: usize,
}

const TERMINAL: [&str; 3] = ["completed", "dead", "cancelled"];
/// Time for a host whose link came back to reconnect (µs).
const REJOIN_WITHIN: u64 = 2_000_000;

pub(crate) fn check(evidence: &Evidence) -> Delivery {
    let mut found = Delivery {
        enqueued: evidence.promises.len(),
        ..Delivery::default()
    };
    let mut runs_of: BTreeMap<i64, Vec<&Run>> = BTreeMap::new();
    for run in &evidence.runs {
        runs_of.entry(run.job).or_default().push(run);
    }
    let no_runs = Vec::new();

    for (&id, promise) in &evidence.promises {
        let Some(row) = evidence.rows.get(&id) else {
            found.lost.push(format!(
                "job {id} (n={}): acknowledged, not in the table",
                promise.n
            ));
            continue;
        };
        if !TERMINAL.contains(&row.state.as_str()) {
            found.lost.push(format!(
                "job {id} (n={}): {} after the drain, attempt {}",
                promise.n, row.state, row.attempt
            ));
        }
        if row.n != promise.n {
            found.n_differs.push(format!(
                "job {id}: acknowledged for n={}, the row holds n={}",
                promise.n, row.n
            ));
        }
        let runs = runs_of.get(&id).unwrap_or(&no_runs);
        match row.state.as_str() {
            "completed" => {
                found.completed += 1;
                if let Some(why) = completed_without_a_finished_run(runs) {
                    found.completed_unrun.push(format!(
                        "job {id} (n={}): completed at attempt {}, {why}",
                        promise.n, row.attempt
                    ));
                }
            }
            "dead" => found.dead += 1,
            _ => {}
        }
        let starts = runs.len();
        let done_at = |attempt: u32| {
            runs.iter()
                .any(|run| run.attempt == attempt && matches!(run.end, Some(End::Done(_))))
        };
        if promise.poison || row.poison {
            found.poison += 1;
            let exact = row.state == "dead"
                && row.attempt == row.max_attempts
                && row.max_attempts == settings::POISON_MAX_ATTEMPTS;
            if !exact || starts == 0 || starts > row.max_attempts as usize {
                found.poison_wrong.push(format!(
                    "poison job {id}: {} at attempt {}/{} after {starts} start(s)",
                    row.state, row.attempt, row.max_attempts
                ));
            }
        } else if promise.fails == ALWAYS {
            found.always_failing += 1;
            let exact = row.state == "dead"
                && row.attempt == row.max_attempts
                && row.max_attempts == settings::ALWAYS_FAILING_MAX_ATTEMPTS;
            let done = runs.iter().any(|run| matches!(run.end, Some(End::Done(_))));
            if !exact || starts == 0 || starts > row.max_attempts as usize || done {
                found.always_failing_wrong.push(format!(
                    "job {id} (n={}), failing every run: {} at attempt {}/{} after {starts} start(s){}",
                    promise.n,
                    row.state,
                    row.attempt,
                    row.max_attempts,
                    if done { ", one of them done" } else { "" }
                ));
            }
        } else {
            if row.state == "dead" {
                found.dead_healthy.push(format!(
                    "job {id} (n={}): dead at attempt {}: {}",
                    promise.n, row.attempt, row.last_error
                ));
            }
            if promise.fails > 0 {
                found.fails_first += 1;
                let retried =
                    row.state == "completed" && row.attempt > promise.fails && done_at(row.attempt);
                if !retried {
                    let failed = runs
                        .iter()
                        .filter(|run| matches!(run.end, Some(End::Failed(_))))
                        .count();
                    found.fails_first_wrong.push(format!(
                        "job {id} (n={}), failing its first {} attempt(s): {} at attempt {} after {starts} start(s), {failed} failed as planned{}",
                        promise.n,
                        promise.fails,
                        row.state,
                        row.attempt,
                        if row.state == "completed" && !done_at(row.attempt) {
                            format!("; no run at attempt {} was done", row.attempt)
                        } else {
                            String::new()
                        }
                    ));
                }
            }
        }
    }
    let promised: BTreeSet<i64> = evidence.promises.keys().copied().collect();
    found.unacknowledged_rows = evidence
        .rows
        .keys()
        .filter(|id| !promised.contains(id))
        .count();
    for (id, row) in &evidence.rows {
        let acknowledged = if promised.contains(id) {
            "acknowledged"
        } else {
            "unacknowledged"
        };
        if !TERMINAL.contains(&row.state.as_str()) {
            found.not_terminal.push(format!(
                "job {id} (n={}, {acknowledged}): {} at attempt {}",
                row.n, row.state, row.attempt
            ));
        }
        if row.state == "cancelled" {
            found.cancelled.push(format!(
                "job {id} (n={}, {acknowledged}): cancelled at attempt {}: {}",
                row.n, row.attempt, row.last_error
            ));
        }
        if evidence.rolled_back.contains(&row.n) {
            found.rolled_back_present.push(format!(
                "job {id} (n={}) of a rolled-back transaction is {}",
                row.n, row.state
            ));
        }
        if evidence.killed_in_tx.contains(&row.n) {
            found.killed_in_tx_present.push(format!(
                "job {id} (n={}) of a transaction killed before its commit is {}",
                row.n, row.state
            ));
        }
    }

    redelivery(evidence, &runs_of, &mut found);
    restarts(evidence, &runs_of, &mut found);
    pauses(evidence, &runs_of, &mut found);
    partitions(evidence, &mut found);
    found
}

/// Why a completed job's runs do not show a run that completed it, if they do not: none
/// finished its work, or none did after its last stopped run. A stopped run (`cancelled`)
/// gave its job back (a shutdown's release) or lost its lease; either way the job was not
/// done, and a store that records a release or a lost run as completed shows here.
fn completed_without_a_finished_run(runs: &[&Run]) -> Option<String> {
    let last_stopped = runs
        .iter()
        .filter(|run| matches!(run.end, Some(End::Cancelled(_))))
        .max_by_key(|run| run.start);
    let done_after = runs.iter().any(|run| {
        matches!(run.end, Some(End::Done(_)))
            && last_stopped.is_none_or(|stopped| run.start > stopped.start)
    });
    if done_after {
        return None;
    }
    let done = runs
        .iter()
        .filter(|run| matches!(run.end, Some(End::Done(_))))
        .count();
    Some(match last_stopped {
        Some(stopped) if done > 0 => format!(
            "{} run(s): run {} on {} was stopped at {} and no run after it was done",
            runs.len(),
            stopped.attempt,
            stopped.process,
            stopped.end.map_or(0, End::at)
        ),
        _ => format!("{} run(s), none done", runs.len()),
    })
}

/// For each graceful restart (SIGTERM): the runs its worker held. Each must end before the
/// process exits: done within the grace, or stopped at its end (`cancelled`) and given back,
/// to start again elsewhere. The jobs it had claimed and not started go back at once, with
/// no ledger line to follow them by; the worker's `released` counter counts them.
fn restarts(evidence: &Evidence, runs_of: &BTreeMap<i64, Vec<&Run>>, found: &mut Delivery) {
    let grace = micros(settings::GRACE);
    let seen_within = micros(FENCE_SEEN_WITHIN);
    for term in &evidence.faults.terms {
        let mut stopped_here = 0;
        let died_otherwise = evidence
            .faults
            .exits
            .iter()
            .any(|(process, _, status)| process == &term.process && status != "exit:0");
        for run in evidence.open_at(term.t, |run| run.process == term.process) {
            found.restart_held += 1;
            let after = |t: u64| t.saturating_sub(term.t) / 1000;
            match run.end {
                None if died_otherwise => found.restart_died += 1,
                None => found.restart_wrong.push(format!(
                    "job {} (n={}) run {} on {}: no end before its process exited (SIGTERM at {})",
                    run.job, run.n, run.attempt, run.process, term.t
                )),
                Some(End::Cancelled(stopped)) => {
                    found.restart_stopped += 1;
                    stopped_here += 1;
                    let next = runs_of
                        .get(&run.job)
                        .and_then(|runs| runs.iter().find(|other| other.start > stopped));
                    match next {
                        Some(next) => found.restart_redeliveries.push(next.start - stopped),
                        None => found.restart_wrong.push(format!(
                            "job {} (n={}) run {} on {}, stopped {} ms after the SIGTERM and given back: never started again, {}",
                            run.job,
                            run.n,
                            run.attempt,
                            run.process,
                            after(stopped),
                            evidence
                                .rows
                                .get(&run.job)
                                .map_or("no row".to_owned(), |row| format!(
                                    "{} at attempt {}",
                                    row.state, row.attempt
                                ))
                        )),
                    }
                }
                Some(end) if end.at() > term.t.saturating_add(grace + seen_within) => {
                    found.restart_wrong.push(format!(
                        "job {} (n={}) run {} on {}: finished its work {} ms after the SIGTERM, past the {} ms grace",
                        run.job,
                        run.n,
                        run.attempt,
                        run.process,
                        after(end.at()),
                        grace / 1000
                    ));
                }
                Some(_) => {}
            }
        }
        if stopped_here > 0 {
            found.restarts_stopping += 1;
        }
        if let Some(lines) = evidence.counters.get(&term.process) {
            let before = lines
                .iter()
                .rev()
                .find(|line| line.t <= term.t)
                .map_or(0, |line| line.released);
            if let Some(last) = lines.last().filter(|line| line.last) {
                found.restart_unstarted += last
                    .released
                    .saturating_sub(before)
                    .saturating_sub(stopped_here);
            }
        }
    }
}

/// How long a job held at a kill took to start again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Redelivery {
    /// µs from the kill to the job's next start.
    pub(crate) after_kill: u64,
    /// µs from the last crash of another worker (a kill or a signal) before that start, or
    /// from the kill when there was none. A worker that crashes holds its global concurrency slots until their leases
    /// run out, so a job rescued in time may still wait for a slot a later crash took down:
    /// its wait is bounded from that crash, not from its own kill.
    pub(crate) after_last_crash: u64,
}

/// For each kill: the jobs the killed process had started and not ended, and how long
/// until each started again anywhere.
fn redelivery(evidence: &Evidence, runs_of: &BTreeMap<i64, Vec<&Run>>, found: &mut Delivery) {
    for kill in &evidence.faults.kills {
        let (process, killed_at) = (&kill.process, &kill.t);
        for run in evidence.open_at(kill.t, move |run| run.process == kill.process) {
            let next = runs_of
                .get(&run.job)
                .and_then(|runs| runs.iter().find(|other| other.start > *killed_at));
            match next {
                // The next claim (attempt + 1) went to a worker that died or was cut off
                // before it started the run; when that claim happened is not in any ledger.
                Some(next) if next.attempt > run.attempt + 1 => found.reclaims_lost += 1,
                Some(next) => {
                    let last_crash = evidence
                        .faults
                        .exits
                        .iter()
                        .filter(|(other, t, how)| {
                            other != process
                                && other.starts_with('w')
                                && how.starts_with("signal")
                                && *t > *killed_at
                                && *t < next.start
                        })
                        .map(|(_, t, _)| *t)
                        .max()
                        .unwrap_or(*killed_at);
                    found.redeliveries.push(Redelivery {
                        after_kill: next.start - killed_at,
                        after_last_crash: next.start - last_crash,
                    });
                }
                None => {
                    let row = evidence.rows.get(&run.job);
                    let exhausted = row
                        .is_some_and(|row| row.state == "dead" && row.attempt >= row.max_attempts);
                    if !exhausted {
                        found.not_redelivered.push(format!(
                            "job {} (n={}) held by {process} at its kill ({killed_at}): never started again, {}",
                            run.job,
                            run.n,
                            row.map_or("no row".to_owned(), |row| row.state.clone())
                        ));
                    }
                }
            }
        }
    }
}

/// For each pause: the runs the process held. One that finished after SIGCONT while its
/// job had meanwhile started on another claim is a zombie: its ack must have been refused,
/// which the process counts as `stale`.
///
/// An ack can also go unanswered (a store timeout: the process counts it `unrecorded`):
/// the store may or may not have taken it, so it is unverified, unless the job's row shows
/// it was taken (completed, with no other run that finished its work). Only the acks the
/// process counted neither refused nor unanswered were surely taken.
fn pauses(evidence: &Evidence, runs_of: &BTreeMap<i64, Vec<&Run>>, found: &mut Delivery) {
    let answer_within = u64::try_from(settings::STORE_TIMEOUT.as_micros()).unwrap_or(u64::MAX);
    let mut zombies: BTreeMap<&str, Vec<Zombie<'_>>> = BTreeMap::new();
    for (process, span) in &evidence.faults.pauses {
        for run in evidence.open_at(span.from, move |run| &run.process == process) {
            found.paused_runs += 1;
            match run.end {
                Some(End::Cancelled(_)) => found.fenced_on_wake += 1,
                // A failed run's end is a retry the store must refuse just the same.
                Some(end @ (End::Done(_) | End::Failed(_))) => {
                    let done = end.at();
                    let runs = runs_of.get(&run.job).map_or(&[][..], Vec::as_slice);
                    let taken_over = runs
                        .iter()
                        .any(|other| other.start > span.from && other.start < done);
                    if taken_over {
                        found.zombie_acks += 1;
                        let completed_alone = matches!(end, End::Done(_))
                            && !run.poison
                            && evidence
                                .rows
                                .get(&run.job)
                                .is_some_and(|row| row.state == "completed")
                            && !runs.iter().any(|other| {
                                !std::ptr::eq(*other, run)
                                    && matches!(other.end, Some(End::Done(_)))
                            });
                        zombies.entry(process.as_str()).or_default().push(Zombie {
                            paused_at: span.from,
                            done,
                            run,
                            completed_alone,
                            failed: matches!(end, End::Failed(_)),
                        });
                    }
                }
                None => {}
            }
        }
    }
    for (process, runs) in zombies {
        let latest = runs.iter().map(|zombie| zombie.done).max().unwrap_or(0);
        let paused_at = runs
            .iter()
            .map(|zombie| zombie.paused_at)
            .min()
            .unwrap_or(0);
        let lines = evidence
            .counters
            .get(process)
            .map_or(&[][..], Vec::as_slice);
        // Only a line that the acks' answers could have reached counts: one written a store
        // timeout after the last of them, or at a graceful exit. A process woken by SIGCONT
        // writes its missed periodic lines at once, before its late acks have even been
        // sent; if it dies right after (a poison job), its refusals go uncounted.
        let answered_by = latest.saturating_add(answer_within);
        let Some(after) = lines
            .iter()
            .rev()
            .find(|line| line.t > answered_by || (line.last && line.t > latest))
        else {
            found.zombie_acks_unverified += runs.len();
            continue;
        };
        // What the process counted before its pause was not about these acks.
        let before = lines.iter().rev().find(|line| line.t <= paused_at);
        let since = |count: fn(&Counters) -> u64| {
            let earlier = before.map_or(0, count);
            usize::try_from(count(after).saturating_sub(earlier)).unwrap_or(usize::MAX)
        };
        let refused = since(|line| line.stale);
        let unanswered = since(|line| line.unrecorded);
        // A failed run whose lease the worker knew lost sends no retry at all (counted a
        // lost lease): withheld, not taken. A done run always sends its ack, so lost leases
        // excuse failed zombies only.
        let withheld = since(|line| line.troubled - line.stale - line.unrecorded);
        let failed = runs.iter().filter(|zombie| zombie.failed).count();
        found.zombie_acks_withheld += failed.min(withheld);
        let needing = runs.len() - failed.min(withheld);
        found.zombie_acks_refused += refused.min(needing);
        let not_refused = needing.saturating_sub(refused);
        let maybe_taken = not_refused.min(unanswered);
        let surely_taken = not_refused - maybe_taken;
        let shown_taken = runs.iter().filter(|zombie| zombie.completed_alone).count();
        // Which acks were taken is known only from the rows; a count says how many, not which.
        let taken = runs
            .iter()
            .filter(|zombie| surely_taken > 0 || zombie.completed_alone);
        for zombie in taken {
            let run = zombie.run;
            let why = if zombie.completed_alone {
                "the job is completed and no other run finished it"
            } else {
                "not all its late acks were counted refused or unanswered"
            };
            found.zombie_acks_taken.push(format!(
                "job {} (n={}) run {} on {process} done at {} after another claim started it: {why}; \
                 {process} counted {refused} refused, {unanswered} unanswered and {withheld} withheld (lease lost) since its pause",
                run.job, run.n, run.attempt, zombie.done
            ));
        }
        if surely_taken == 0 {
            found.zombie_acks_unverified += maybe_taken.saturating_sub(shown_taken);
        }
    }
}

/// A run that finished after its process woke from a pause, on a job another claim had
/// meanwhile started.
#[derive(Debug)]
struct Zombie<'a> {
    paused_at: u64,
    done: u64,
    run: &'a Run,
    /// The job is completed and no other run of it finished its work: this run's ack was
    /// taken, whatever its process heard back.
    completed_alone: bool,
    /// It failed on purpose: its end is a retry, or nothing if the worker knew its lease
    /// lost.
    failed: bool,
}

/// For each link down: the runs then open on that host must end in time, unless their
/// process died first; and the host must take work again once the link is back.
///
/// The last renewal that reached the store left before the cut, so the lease of every run
/// cut off ends by the cut + a lease at the latest: the fence point. A run whose planned
/// work ends before it may end `done`; one whose work would go on past it must end
/// `cancelled` (its fence) by then, with [`FENCE_SEEN_WITHIN`] for the line to be written.
/// Runs that started while the link was down count too: their claims left before the cut.
fn partitions(evidence: &Evidence, found: &mut Delivery) {
    let lease = micros(settings::LEASE);
    let seen_within = micros(FENCE_SEEN_WITHIN);
    for (host, span) in &evidence.faults.links {
        let fence_by = span.from.saturating_add(lease);
        let deadline = fence_by.saturating_add(seen_within);
        let mut past_lease_here = 0;
        let cut_off = evidence.runs.iter().filter(|run| {
            run.host() == host.as_str()
                && !run.poison
                && run.start < span.to
                && run.end.is_none_or(|end| end.at() >= span.from)
                && evidence
                    .faults
                    .death_of(&run.process)
                    .is_none_or(|died| died >= span.from)
        });
        for run in cut_off {
            found.cut_off_runs += 1;
            let past_lease = run.planned_end().is_some_and(|end| end > fence_by);
            let died = evidence.faults.death_of(&run.process);
            let after_cut = |t: u64| (t.saturating_sub(span.from)) / 1000;
            let failure = match run.end {
                Some(End::Cancelled(t)) if t <= deadline => None,
                Some(end) if end.finished_work() && end.at() <= deadline && !past_lease => None,
                _ if died.is_some_and(|t| t <= deadline) => {
                    found.cut_off_died += 1;
                    continue;
                }
                Some(End::Done(t)) => Some(format!("done {} ms after the cut", after_cut(t))),
                Some(End::Failed(t)) => Some(format!("failed {} ms after the cut", after_cut(t))),
                Some(End::Cancelled(t)) => {
                    Some(format!("cancelled {} ms after the cut", after_cut(t)))
                }
                None => Some("never ended".to_owned()),
            };
            if past_lease {
                found.past_lease += 1;
                past_lease_here += 1;
                if failure.is_none() {
                    found.past_lease_fenced += 1;
                }
            }
            if let Some(failure) = failure {
                found.unfenced.push(format!(
                    "job {} (n={}) run {} on {}, started {} with {} of work, cut off at {}: {failure}; \
                     bound {} ms after the cut ({})",
                    run.job,
                    run.n,
                    run.attempt,
                    run.process,
                    run.start,
                    run.work_ms
                        .map_or("unknown".to_owned(), |ms| format!("{ms} ms")),
                    span.from,
                    (deadline - span.from) / 1000,
                    if past_lease {
                        "its work outlasts the lease: only its fence ends it in time"
                    } else {
                        "done or cancelled"
                    }
                ));
            }
        }
        if past_lease_here > 0 {
            found.links_past_lease += 1;
        }
        // Only links after which there was work to take: a run started anywhere more than
        // a reconnect's time after the link came back.
        let work_left = evidence
            .runs
            .iter()
            .any(|run| run.start > span.to.saturating_add(REJOIN_WITHIN));
        if span.to != u64::MAX && work_left {
            found.links += 1;
            if evidence
                .runs
                .iter()
                .any(|run| run.host() == host.as_str() && run.start > span.to)
            {
                found.rejoined += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::evidence::{Row, Span};

    const PAUSED: u64 = 10_000_000;
    const WOKEN: u64 = 13_000_000;

    fn run(job: i64, attempt: u32, process: &str, start: u64, end: End) -> Run {
        Run {
            job,
            n: u64::try_from(job).unwrap_or(0),
            attempt,
            process: process.to_owned(),
            start,
            end: Some(end),
            poison: false,
            work_ms: Some(50),
        }
    }

    fn counters(t: u64, stale: u64, unrecorded: u64) -> Counters {
        Counters {
            t,
            troubled: stale + unrecorded,
            stale,
            unrecorded,
            last: false,
            retried: 0,
            released: 0,
            completed: 0,
            dead: 0,
        }
    }

    /// `w4#1` paused holding jobs 1 to 3; each started again on `w1#1` and finished there
    /// (or, with `other_done` false, was stopped there) before `w4#1` woke and finished
    /// them too. `w4#1` then counted `after`, a store timeout and more after its last end.
    fn paused_evidence(other_done: bool, after: Counters) -> Evidence {
        let mut evidence = Evidence::default();
        evidence.faults.pauses.push((
            "w4#1".to_owned(),
            Span {
                from: PAUSED,
                to: WOKEN,
            },
        ));
        for job in 1..=3 {
            evidence
                .runs
                .push(run(job, 1, "w4#1", PAUSED - 100, End::Done(WOKEN + 100)));
            let other_end = if other_done {
                End::Done(PAUSED + 2_100_000)
            } else {
                End::Cancelled(PAUSED + 2_100_000)
            };
            evidence
                .runs
                .push(run(job, 2, "w1#1", PAUSED + 2_000_000, other_end));
            evidence.rows.insert(
                job,
                Row {
                    state: "completed".to_owned(),
                    n: u64::try_from(job).unwrap_or(0),
                    poison: false,
                    attempt: 2,
                    max_attempts: 20,
                    last_error: String::new(),
                },
            );
        }
        evidence.counters.insert(
            "w4#1".to_owned(),
            vec![counters(PAUSED - 1_000, 0, 0), after],
        );
        evidence
    }

    fn paused(evidence: &Evidence) -> Delivery {
        let mut runs_of: BTreeMap<i64, Vec<&Run>> = BTreeMap::new();
        for run in &evidence.runs {
            runs_of.entry(run.job).or_default().push(run);
        }
        let mut found = Delivery::default();
        pauses(evidence, &runs_of, &mut found);
        found
    }

    const COUNTED: u64 = WOKEN + 5_000_000;

    #[test]
    fn refused_late_acks_pass() {
        let found = paused(&paused_evidence(true, counters(COUNTED, 3, 0)));
        assert_eq!((found.paused_runs, found.zombie_acks), (3, 3));
        assert!(
            found.zombie_acks_taken.is_empty(),
            "{:?}",
            found.zombie_acks_taken
        );
        assert_eq!(found.zombie_acks_unverified, 0);
    }

    #[test]
    fn unanswered_late_acks_are_unverified_not_taken() {
        // Seed 729347 on SQLite: the three acks timed out, the jobs were completed by the
        // runs that took them over.
        let found = paused(&paused_evidence(true, counters(COUNTED, 0, 3)));
        assert!(
            found.zombie_acks_taken.is_empty(),
            "{:?}",
            found.zombie_acks_taken
        );
        assert_eq!(found.zombie_acks_unverified, 3);
    }

    #[test]
    fn an_accepted_late_ack_fails() {
        // Two refused, none unanswered: the third was recorded.
        let found = paused(&paused_evidence(true, counters(COUNTED, 2, 0)));
        assert_eq!(found.zombie_acks_taken.len(), 3, "which one is not known");
        // Refusals and timeouts counted before the pause do not excuse it.
        let mut evidence = paused_evidence(true, counters(COUNTED, 2, 5));
        evidence.counters.insert(
            "w4#1".to_owned(),
            vec![counters(PAUSED - 1_000, 0, 5), counters(COUNTED, 2, 5)],
        );
        let found = paused(&evidence);
        assert_eq!(found.zombie_acks_taken.len(), 3);
        assert_eq!(found.zombie_acks_unverified, 0);
    }

    #[test]
    fn an_unanswered_ack_the_row_shows_taken_fails() {
        // The runs that took the jobs over were stopped: only the late acks can have
        // completed them, whatever the paused process heard back.
        let found = paused(&paused_evidence(false, counters(COUNTED, 0, 3)));
        assert_eq!(
            found.zombie_acks_taken.len(),
            3,
            "{:?}",
            found.zombie_acks_taken
        );
        assert_eq!(found.zombie_acks_unverified, 0);
    }

    fn cut_off(start: u64, work_ms: u64, end: Option<End>) -> Run {
        Run {
            job: i64::try_from(start / 1000).unwrap_or(0),
            n: start / 1000,
            attempt: 1,
            process: "w1#1".to_owned(),
            start,
            end,
            poison: false,
            work_ms: Some(work_ms),
        }
    }

    const CUT: u64 = 10_000_000;
    const UP: u64 = 13_000_000;

    fn partitioned(runs: Vec<Run>) -> Delivery {
        let mut evidence = Evidence::default();
        evidence
            .faults
            .links
            .push(("w1".to_owned(), Span { from: CUT, to: UP }));
        evidence.runs = runs;
        let mut found = Delivery::default();
        partitions(&evidence, &mut found);
        found
    }

    #[test]
    fn a_run_whose_work_outlasts_the_lease_must_be_fenced() {
        // Cancelled 1.6 s after the cut: fenced in time.
        let found = partitioned(vec![cut_off(
            CUT - 1_000_000,
            5000,
            Some(End::Cancelled(CUT + 1_600_000)),
        )]);
        assert!(found.unfenced.is_empty(), "{:?}", found.unfenced);
        assert_eq!((found.past_lease, found.past_lease_fenced), (1, 1));
        // Left to finish its work: done past the lease, whatever the time.
        let found = partitioned(vec![cut_off(
            CUT - 500_000,
            4000,
            Some(End::Done(CUT + 3_500_000)),
        )]);
        assert_eq!(found.unfenced.len(), 1);
        assert_eq!((found.past_lease, found.past_lease_fenced), (1, 0));
        // Cancelled, but only after the lease could have run out.
        let found = partitioned(vec![cut_off(
            CUT - 500_000,
            4000,
            Some(End::Cancelled(CUT + 2_400_000)),
        )]);
        assert_eq!(found.unfenced.len(), 1);
    }

    #[test]
    fn a_run_whose_work_ends_before_the_fence_point_may_finish() {
        let found = partitioned(vec![
            cut_off(CUT - 10_000, 50, Some(End::Done(CUT + 45_000))),
            // Its work ends 100 ms before the lease could: done a little after is its write.
            cut_off(CUT - 1_000_000, 2900, Some(End::Done(CUT + 1_950_000))),
            // Ended before the cut: not cut off.
            cut_off(CUT - 2_000_000, 1000, Some(End::Done(CUT - 1_000_000))),
        ]);
        assert!(found.unfenced.is_empty(), "{:?}", found.unfenced);
        assert_eq!((found.cut_off_runs, found.past_lease), (2, 0));
    }

    #[test]
    fn a_run_that_never_ends_fails_unless_its_process_died() {
        let run = cut_off(CUT + 20_000, 4000, None);
        assert_eq!(partitioned(vec![run.clone()]).unfenced.len(), 1);
        let mut evidence = Evidence::default();
        evidence
            .faults
            .links
            .push(("w1".to_owned(), Span { from: CUT, to: UP }));
        evidence.faults.exits.push((
            "w1#1".to_owned(),
            CUT + 900_000,
            "signal:6(abort)".to_owned(),
        ));
        evidence.faults.index_deaths();
        evidence.runs = vec![run];
        let mut found = Delivery::default();
        partitions(&evidence, &mut found);
        assert!(found.unfenced.is_empty(), "{:?}", found.unfenced);
        assert_eq!(found.cut_off_died, 1);
    }

    #[test]
    fn a_job_stopped_then_completed_needs_a_later_finished_run() {
        let stopped = run(1, 1, "w1#1", 10_000_000, End::Cancelled(11_000_000));
        let done_before = run(1, 1, "w2#1", 5_000_000, End::Done(5_100_000));
        let done_after = run(1, 1, "w3#1", 11_200_000, End::Done(11_300_000));
        assert!(completed_without_a_finished_run(&[&stopped, &done_after]).is_none());
        // A release recorded as a completion: the job's last run was stopped.
        let why = completed_without_a_finished_run(&[&done_before, &stopped]);
        assert!(
            why.as_deref()
                .is_some_and(|why| why.contains("no run after it was done")),
            "{why:?}"
        );
        assert!(completed_without_a_finished_run(&[&stopped]).is_some());
        let failed = run(1, 1, "w1#1", 10_000_000, End::Failed(10_050_000));
        assert!(
            completed_without_a_finished_run(&[&failed]).is_some(),
            "a failed run completes nothing"
        );
    }

    const TERM: u64 = 20_000_000;

    /// `w1#1` holds job 1 (work past the grace) and job 2 (done within it) at a SIGTERM,
    /// then exits with `status`.
    fn restarted(stop_end: Option<End>, status: &str) -> Evidence {
        let mut evidence = Evidence::default();
        evidence.faults.terms.push(crate::check::evidence::Term {
            process: "w1#1".to_owned(),
            t: TERM,
        });
        evidence
            .faults
            .exits
            .push(("w1#1".to_owned(), TERM + 1_200_000, status.to_owned()));
        evidence.faults.index_deaths();
        let mut long = run(1, 1, "w1#1", TERM - 500_000, End::Done(0));
        long.end = stop_end;
        long.work_ms = Some(3000);
        evidence.runs.push(long);
        evidence
            .runs
            .push(run(2, 1, "w1#1", TERM - 10_000, End::Done(TERM + 40_000)));
        evidence
    }

    fn restart_checked(evidence: &Evidence) -> Delivery {
        let mut runs_of: BTreeMap<i64, Vec<&Run>> = BTreeMap::new();
        for run in &evidence.runs {
            runs_of.entry(run.job).or_default().push(run);
        }
        let mut found = Delivery::default();
        restarts(evidence, &runs_of, &mut found);
        found
    }

    #[test]
    fn a_run_stopped_at_a_graceful_restart_must_start_again() {
        let stopped_at = TERM + 1_010_000;
        let mut evidence = restarted(Some(End::Cancelled(stopped_at)), "exit:0");
        evidence.runs.push(run(
            1,
            1,
            "w2#1",
            stopped_at + 150_000,
            End::Done(TERM + 5_000_000),
        ));
        // Its counters: 3 released since the SIGTERM, one of them the stopped run.
        let mut last = counters(TERM + 1_100_000, 0, 0);
        last.last = true;
        last.released = 3;
        evidence.counters.insert(
            "w1#1".to_owned(),
            vec![counters(TERM - 500_000, 0, 0), last],
        );
        let found = restart_checked(&evidence);
        assert!(found.restart_wrong.is_empty(), "{:?}", found.restart_wrong);
        assert_eq!((found.restart_held, found.restart_stopped), (2, 1));
        assert_eq!(found.restart_unstarted, 2);
        assert_eq!(found.restart_redeliveries, vec![150_000]);
        assert_eq!(found.restarts_stopping, 1);
        // Given back and never run again (a release the store recorded as something else).
        evidence.runs.pop();
        let found = restart_checked(&evidence);
        assert_eq!(found.restart_wrong.len(), 1, "{:?}", found.restart_wrong);
        assert!(found.restart_wrong[0].contains("never started again"));
    }

    #[test]
    fn a_restart_must_stop_runs_at_the_grace_and_end_every_run() {
        // Left to run to the end of its work, 2.5 s after the SIGTERM.
        let found = restart_checked(&restarted(Some(End::Done(TERM + 2_500_000)), "exit:0"));
        assert_eq!(found.restart_wrong.len(), 1, "{:?}", found.restart_wrong);
        assert!(found.restart_wrong[0].contains("past the 1000 ms grace"));
        // No end at all before a clean exit.
        let found = restart_checked(&restarted(None, "exit:0"));
        assert_eq!(found.restart_wrong.len(), 1, "{:?}", found.restart_wrong);
        // A poison job it had just started aborted it: exempt, counted apart.
        let found = restart_checked(&restarted(None, "signal:6(abort)"));
        assert!(found.restart_wrong.is_empty(), "{:?}", found.restart_wrong);
        assert_eq!(found.restart_died, 1);
        assert_eq!(found.restarts_stopping, 0);
    }

    #[test]
    fn a_failed_zombie_whose_lease_was_lost_sends_nothing() {
        // Job 3's run failed on purpose on waking: the worker knew its lease lost and sent
        // no retry (a lost lease); jobs 1 and 2's acks were refused.
        let mut evidence = paused_evidence(true, counters(COUNTED, 2, 0));
        evidence.runs[4].end = Some(End::Failed(WOKEN + 100));
        let mut after = counters(COUNTED, 2, 0);
        after.troubled += 1;
        evidence.counters.insert(
            "w4#1".to_owned(),
            vec![counters(PAUSED - 1_000, 0, 0), after],
        );
        let found = paused(&evidence);
        assert!(
            found.zombie_acks_taken.is_empty(),
            "{:?}",
            found.zombie_acks_taken
        );
        assert_eq!(found.zombie_acks_refused, 2);
        assert_eq!(found.zombie_acks_withheld, 1, "the report counts it apart");
        // A lost lease does not excuse a done run: it always sends its ack.
        evidence.runs[4].end = Some(End::Done(WOKEN + 100));
        assert_eq!(paused(&evidence).zombie_acks_taken.len(), 3);
    }

    #[test]
    fn acks_never_counted_are_unverified() {
        // The process died before a line the answers could reach.
        let found = paused(&paused_evidence(true, counters(WOKEN + 200, 0, 0)));
        assert!(found.zombie_acks_taken.is_empty());
        assert_eq!(found.zombie_acks_unverified, 3);
    }

    /// `w1#1` killed at `KILLED` holding job 1, which started again on `w3#1` 5.5 s later;
    /// with `crash` set, `w2#1` aborted 3 s after the kill (holding global slots until its
    /// leases ran out).
    fn killed_evidence(crash: bool) -> Evidence {
        const KILLED: u64 = 20_000_000;
        let mut evidence = Evidence::default();
        evidence.faults.kills.push(crate::check::evidence::Kill {
            process: "w1#1".to_owned(),
            t: KILLED,
            of_all: false,
        });
        let mut exits = vec![(
            "w1#1".to_owned(),
            KILLED + 1_000,
            "signal:9(kill)".to_owned(),
        )];
        if crash {
            exits.push((
                "w2#1".to_owned(),
                KILLED + 3_000_000,
                "signal:6(abort)".to_owned(),
            ));
        }
        // A graceful exit in the wait holds nothing up.
        exits.push(("w4#1".to_owned(), KILLED + 4_000_000, "exit:0".to_owned()));
        evidence.faults.exits = exits;
        evidence.faults.index_deaths();
        let mut held = run(1, 1, "w1#1", KILLED - 10_000, End::Done(0));
        held.end = None;
        evidence.runs.push(held);
        evidence.runs.push(run(
            1,
            2,
            "w3#1",
            KILLED + 5_500_000,
            End::Done(KILLED + 5_600_000),
        ));
        evidence
    }

    fn redelivered(evidence: &Evidence) -> Vec<Redelivery> {
        let mut runs_of: BTreeMap<i64, Vec<&Run>> = BTreeMap::new();
        for run in &evidence.runs {
            runs_of.entry(run.job).or_default().push(run);
        }
        let mut found = Delivery::default();
        redelivery(evidence, &runs_of, &mut found);
        assert!(
            found.not_redelivered.is_empty(),
            "{:?}",
            found.not_redelivered
        );
        found.redeliveries
    }

    #[test]
    fn a_redelivery_is_timed_from_its_kill_and_from_the_last_crash_before_it() {
        let alone = Redelivery {
            after_kill: 5_500_000,
            after_last_crash: 5_500_000,
        };
        assert_eq!(redelivered(&killed_evidence(false)), vec![alone]);
        let held_up = Redelivery {
            after_kill: 5_500_000,
            after_last_crash: 2_500_000,
        };
        assert_eq!(redelivered(&killed_evidence(true)), vec![held_up]);
    }
}
