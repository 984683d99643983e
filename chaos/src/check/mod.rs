//! The checker: joins the ledgers with the jobs table and holds them to the contracts.
//!
//! MUSTs (the run fails on any): every job offered accounted for, every enqueue answered
//! with one id per job, no batch given up; nothing lost; every id acknowledged once, for
//! the job its row holds; the queue drained, every row terminal, none cancelled; no
//! unexplained duplicate; every job a killed worker held starts again within the
//! redelivery bound, and kills that held runs are timed; every run a graceful restart
//! stopped starts again within it; poison jobs and jobs that always fail dead after
//! exactly their attempts; jobs that fail their first attempt completed at a later one;
//! jobs that never fail never dead; no completed job without a run that finished after its
//! last stopped one; nothing of a rolled-back transaction in the table; late acks of paused
//! workers refused; runs cut off by a partition ended in time, those whose work outlasts
//! the lease by their fence; the link-down fault played wherever the store has a network;
//! every fault kind hit work often enough to prove something; the retry and release paths
//! taken; every worker exit explained, the stopped ones graceful; no panic on any
//! process's stderr; the global concurrency and rate limits never exceeded; on SQLite every
//! connection at `synchronous=FULL` in WAL mode; every ledger line readable.
//!
//! A MUST that held with no case to judge says `n/a`, not `ok`: it proved nothing. Where a
//! check is the only evidence of its contract, a quick run (or any run) must have cases.

mod accounting;
mod delivery;
mod duplicates;
mod evidence;
mod exits;
mod hits;
mod limits;

use std::fmt::Write as _;
use std::path::Path;

use crate::settings;
use evidence::Evidence;

/// One line of the result table.
#[derive(Debug)]
struct Row {
    check: String,
    observed: String,
    bound: String,
    /// `None` for information, `Some(held)` for a MUST.
    must: Option<bool>,
    /// How many cases the MUST judged, where that is a count: a MUST that held with none
    /// proved nothing and says `n/a`.
    cases: Option<usize>,
    /// Evidence for a failed MUST.
    evidence: Vec<String>,
}

impl Row {
    fn info(check: &str, observed: String) -> Row {
        Row {
            check: check.to_owned(),
            observed,
            bound: String::new(),
            must: None,
            cases: None,
            evidence: Vec::new(),
        }
    }

    fn must(check: &str, observed: String, bound: &str, held: bool, evidence: Vec<String>) -> Row {
        Row {
            check: check.to_owned(),
            observed,
            bound: bound.to_owned(),
            must: Some(held),
            cases: None,
            evidence,
        }
    }

    /// A MUST that nothing was found: `found` lists each finding, and is the evidence.
    fn none(check: &str, found: &[String]) -> Row {
        Row::must(
            check,
            found.len().to_string(),
            "0",
            found.is_empty(),
            found.to_vec(),
        )
    }

    /// The cases the MUST judged.
    fn cases(mut self, cases: usize) -> Row {
        self.cases = Some(cases);
        self
    }

    /// Fails the MUST when it has no case and `needed`: the run then proved nothing of a
    /// contract this check is the evidence of. `why` says what was wanted.
    fn needing_cases(mut self, needed: bool, why: &str) -> Row {
        if needed && self.cases == Some(0) {
            self.must = Some(false);
            self.evidence.push(format!("no case to judge: {why}"));
        }
        self
    }

    fn vacuous(&self) -> bool {
        self.must == Some(true) && self.cases == Some(0)
    }
}

/// The checker's verdict.
#[derive(Debug)]
pub(crate) struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Whether every MUST held.
    pub(crate) fn passed(&self) -> bool {
        self.rows.iter().all(|row| row.must != Some(false))
    }

    /// The table, in Markdown, followed by the evidence of any failed MUST.
    pub(crate) fn table(&self) -> String {
        let mut text =
            String::from("| check | observed | bound | verdict |\n| --- | --- | --- | --- |\n");
        for row in &self.rows {
            let verdict = match row.must {
                None => "",
                Some(true) if row.vacuous() => "n/a",
                Some(true) => "ok",
                Some(false) => "**FAILED**",
            };
            let _ = writeln!(
                text,
                "| {} | {} | {} | {verdict} |",
                row.check, row.observed, row.bound
            );
        }
        for row in self.rows.iter().filter(|row| row.must == Some(false)) {
            let _ = writeln!(
                text,
                "\n{} — evidence ({} item(s), first 10):",
                row.check,
                row.evidence.len()
            );
            for line in row.evidence.iter().take(10) {
                let _ = writeln!(text, "  {line}");
            }
        }
        text
    }
}

/// Checks the run left in `dir` and prints the table.
pub(crate) fn run(dir: &Path) -> Result<Report, String> {
    let evidence = Evidence::load(dir)?;
    let report = judge(&evidence);
    println!("{}", report.table());
    let vacuous = report.rows.iter().filter(|row| row.vacuous()).count();
    match (report.passed(), vacuous) {
        (true, 0) => println!("every MUST held"),
        (true, vacuous) => {
            println!("every MUST held ({vacuous} with no case to judge: n/a, proving nothing)");
        }
        (false, _) => {
            let failed: Vec<&str> = report
                .rows
                .iter()
                .filter(|row| row.must == Some(false))
                .map(|row| row.check.as_str())
                .collect();
            println!("A MUST FAILED: {}", failed.join("; "));
        }
    }
    Ok(report)
}

fn judge(evidence: &Evidence) -> Report {
    let accounting = accounting::check(evidence);
    let delivery = delivery::check(evidence);
    let duplicates = duplicates::classify(evidence);
    let limits = limits::measure(evidence);
    let hits = hits::count(evidence, &delivery);
    let exits = exits::check(evidence);
    let quick = evidence.quick();
    let store = evidence.store();
    let mut rows = Vec::new();
    rows.push(Row::info(
        "network",
        evidence
            .config
            .get("network")
            .map_or("unknown".to_owned(), |network| match network.as_str() {
                "loopback" => "loopback only (no namespaces: link-down skipped)".to_owned(),
                "one-host" => {
                    "one host, one file (SQLite: link down and server crash do not apply)"
                        .to_owned()
                }
                other => other.to_owned(),
            }),
    ));
    rows.push(Row::info("faults injected", faults_summary(evidence)));
    rows.push(Row::info(
        "worker processes / exits",
        format!(
            "{} started; {}",
            exits.incarnations,
            exits
                .by_cause
                .iter()
                .map(|(cause, count)| format!("{cause} {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    rows.push(Row::info(
        "jobs offered",
        format!(
            "{} ({} poison, {} failing every run, {} failing their first attempt)",
            accounting.jobs, delivery.poison, delivery.always_failing, delivery.fails_first
        ),
    ));
    rows.push(Row::info(
        "enqueued (acknowledged)",
        delivery.enqueued.to_string(),
    ));
    rows.push(Row::info("completed", delivery.completed.to_string()));
    rows.push(Row::info("dead", delivery.dead.to_string()));
    rows.push(Row::info(
        "rows without an acknowledgement / jobs cut off by a producer kill",
        format!(
            "{} / {}",
            delivery.unacknowledged_rows,
            evidence.offered.cut_off.len()
        ),
    ));
    rows.push(Row::info("runs started", evidence.runs.len().to_string()));
    let causes: Vec<String> = duplicates
        .explained
        .iter()
        .map(|(cause, count)| format!("{cause} {count}"))
        .collect();
    rows.push(Row::info(
        "explained duplicates",
        format!(
            "{} ({})",
            duplicates.explained_total(),
            if causes.is_empty() {
                "none".to_owned()
            } else {
                causes.join(", ")
            }
        ),
    ));
    let totals = CounterTotals::of(evidence);
    rows.push(Row::info(
        "worker counters, summed over incarnations",
        format!(
            "completed {}, retried {}, dead {}, released {}, stale (late acks refused) {}",
            totals.completed, totals.retried, totals.dead, totals.released, totals.stale
        ),
    ));
    rows.push(Row::info(
        "links back up with work left / host took work again",
        format!("{} / {}", delivery.links, delivery.rejoined),
    ));

    // Every job offered: the checks below follow acknowledged ids, and a job dropped
    // without an id would pass them all.
    rows.push(
        Row::must(
            "every job offered accounted for",
            format!(
                "{} of {}: {}{}",
                accounting.accounted(),
                accounting.jobs,
                accounting.summary(),
                if evidence.offered.recorded {
                    ""
                } else {
                    " (a ledger without `offer` lines)"
                }
            ),
            "all, each acknowledged, rolled back, killed inside a transaction, given up, a row without an acknowledgement, or cut off by a producer kill with no row",
            accounting.unaccounted.is_empty(),
            accounting.unaccounted.clone(),
        )
        .cases(usize::try_from(accounting.jobs).unwrap_or(usize::MAX))
        .needing_cases(true, "run.conf names no jobs"),
    );
    let short: Vec<String> = evidence
        .offered
        .short_answers
        .iter()
        .map(|(first, last, jobs, ids)| {
            format!("the batch n={first}..{last}: {ids} id(s) for {jobs} job(s)")
        })
        .collect();
    rows.push(
        Row::must(
            "enqueues answered with one id per job",
            format!("{} short or long answer(s)", short.len()),
            "0",
            short.is_empty(),
            short,
        )
        .cases(delivery.enqueued),
    );
    let gave_up: Vec<String> = evidence
        .offered
        .gave_up
        .iter()
        .map(|n| format!("n={n}: given up"))
        .collect();
    rows.push(Row::must(
        "jobs given up (an enqueue refused for the whole 30 s retry window)",
        gave_up.len().to_string(),
        "0 (no fault keeps the store away that long)",
        gave_up.is_empty(),
        gave_up,
    ));
    if evidence.lossy_fsync() {
        // Not a MUST: `appendfsync everysec` acknowledges writes up to a second before they
        // reach the disk, so a server crash may take them; the run says how many and which.
        rows.push(Row::info(
            "lost (REPORTED, not a MUST: appendfsync everysec loses up to 1 s of acknowledged writes on a server crash)",
            if delivery.lost.is_empty() {
                "0".to_owned()
            } else {
                format!(
                    "{}: {}",
                    delivery.lost.len(),
                    delivery.lost.iter().take(20).cloned().collect::<Vec<_>>().join("; ")
                )
            },
        ));
    } else {
        rows.push(Row::none("lost", &delivery.lost).cases(delivery.enqueued));
    }
    let acknowledged_wrong: Vec<String> = evidence
        .anomalies
        .acknowledged_twice
        .iter()
        .chain(&delivery.n_differs)
        .cloned()
        .collect();
    let identity = format!(
        "{} id(s) acknowledged twice, {} row(s) holding another job than acknowledged",
        evidence.anomalies.acknowledged_twice.len(),
        delivery.n_differs.len()
    );
    if evidence.lossy_fsync() {
        // A crash that loses the store's id counter hands an id out again.
        rows.push(Row::info(
            "ids acknowledged once, for the job the row holds (REPORTED: appendfsync everysec)",
            identity,
        ));
    } else {
        rows.push(
            Row::must(
                "ids acknowledged once, for the job the row holds",
                identity,
                "0 / 0",
                acknowledged_wrong.is_empty(),
                acknowledged_wrong,
            )
            .cases(delivery.enqueued),
        );
    }
    rows.push(Row::must(
        "queue drained after the producer finished",
        match evidence.faults.drain_left {
            Some(0) => "drained".to_owned(),
            Some(live) => format!("{live} live job(s) left at the deadline"),
            None => "no drain recorded".to_owned(),
        },
        "0 live",
        evidence.faults.drain_left == Some(0),
        Vec::new(),
    ));
    rows.push(
        Row::must(
            "rows not in a terminal state (acknowledged or not)",
            format!("{} of {}", delivery.not_terminal.len(), evidence.rows.len()),
            "0",
            delivery.not_terminal.is_empty(),
            delivery.not_terminal.clone(),
        )
        .cases(evidence.rows.len()),
    );
    rows.push(
        Row::none(
            "rows cancelled (nothing in the harness cancels a job)",
            &delivery.cancelled,
        )
        .cases(evidence.rows.len()),
    );
    rows.push(
        Row::none("unexplained duplicates", &duplicates.unexplained).cases(evidence.runs.len()),
    );
    let bound = settings::redelivery_bound();
    let bound_us = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
    let mut times: Vec<u64> = delivery.redeliveries.iter().map(|r| r.after_kill).collect();
    times.sort_unstable();
    // Late: past the bound even from the last worker crash before the job started again.
    let mut late: Vec<String> = delivery
        .redeliveries
        .iter()
        .filter(|r| r.after_last_crash > bound_us)
        .map(|r| format!("{} ms", r.after_kill / 1000))
        .collect();
    let held_up_by_a_later_crash = delivery
        .redeliveries
        .iter()
        .filter(|r| r.after_kill > bound_us && r.after_last_crash <= bound_us)
        .count();
    let kills_holding = hits.kills_holding;
    if kills_holding > 0 && times.is_empty() {
        late.push(format!(
            "{kills_holding} kill(s) held runs, and no redelivery was timed"
        ));
    }
    rows.push(
        Row::must(
            "redelivery after kill -9 (p50 / max)",
            match percentiles(&times) {
                Some((p50, max)) => format!(
                    "{p50} ms / {max} ms over {} jobs{}{}",
                    times.len(),
                    match held_up_by_a_later_crash {
                        0 => String::new(),
                        held => format!(" ({held} past the bound waited out a later worker crash, each within it after that crash)"),
                    },
                    match delivery.reclaims_lost {
                        0 => String::new(),
                        lost => format!(" (+{lost} re-claimed by a worker that failed before starting it: not timed)"),
                    }
                ),
                None => format!("none timed ({kills_holding} kill(s) held runs)"),
            },
            &format!(
                "≤ {} ms (lease + 2 sweeps + a store call) from the kill, or from a later worker crash before the start",
                bound.as_millis()
            ),
            late.is_empty(),
            late,
        )
        .cases(times.len()),
    );
    rows.push(
        Row::none(
            "jobs held at a kill, never started again",
            &delivery.not_redelivered,
        )
        .cases(times.len() + delivery.not_redelivered.len() + delivery.reclaims_lost),
    );
    let mut restart_times = delivery.restart_redeliveries.clone();
    restart_times.sort_unstable();
    let mut restart_wrong = delivery.restart_wrong.clone();
    restart_wrong.extend(restart_times.iter().filter(|&&t| t > bound_us).map(|t| {
        format!(
            "a job given back started again {} ms after its stop",
            t / 1000
        )
    }));
    rows.push(
        Row::must(
            "graceful restart: runs past the grace stopped, given back and started again (p50 / max)",
            format!(
                "{} of {} held run(s) stopped at the grace{}{}; {}",
                delivery.restart_stopped,
                delivery.restart_held,
                match delivery.restart_died {
                    0 => String::new(),
                    died => format!(", {died} ended by their process's death (a poison job)"),
                },
                format_args!(
                    "; {} claimed job(s) given back unstarted",
                    delivery.restart_unstarted
                ),
                match percentiles(&restart_times) {
                    Some((p50, max)) => format!(
                        "started again {p50} ms / {max} ms after their stop, over {} jobs",
                        restart_times.len()
                    ),
                    None => "none timed".to_owned(),
                }
            ),
            &format!(
                "each ended by the exit, none done past the grace; each stopped one started again ≤ {} ms after its stop",
                bound.as_millis()
            ),
            restart_wrong.is_empty(),
            restart_wrong,
        )
        .cases(delivery.restart_held),
    );
    let poison_planned = evidence.config_number("poison").unwrap_or(0) > 0;
    rows.push(
        Row::must(
            "poison jobs dead after exactly max attempts",
            format!(
                "{} / {}",
                delivery.poison - delivery.poison_wrong.len(),
                delivery.poison
            ),
            &format!("all, at {}", settings::POISON_MAX_ATTEMPTS),
            delivery.poison_wrong.is_empty(),
            delivery.poison_wrong.clone(),
        )
        .cases(delivery.poison)
        .needing_cases(
            poison_planned,
            "the run planned poison jobs, none was acknowledged",
        ),
    );
    let always_planned = evidence.config_number("always_failing").unwrap_or(0) > 0;
    rows.push(
        Row::must(
            "jobs failing every run, dead after exactly max attempts",
            format!(
                "{} / {}",
                delivery.always_failing - delivery.always_failing_wrong.len(),
                delivery.always_failing
            ),
            &format!(
                "all dead at {0} of {0}, none done",
                settings::ALWAYS_FAILING_MAX_ATTEMPTS
            ),
            delivery.always_failing_wrong.is_empty(),
            delivery.always_failing_wrong.clone(),
        )
        .cases(delivery.always_failing)
        .needing_cases(
            always_planned,
            "the run planned jobs that fail every run, none was acknowledged",
        ),
    );
    rows.push(
        Row::must(
            "jobs failing their first attempt, completed at a later one by a run that finished",
            format!(
                "{} / {}",
                delivery.fails_first - delivery.fails_first_wrong.len(),
                delivery.fails_first
            ),
            "all completed at attempt ≥ 2, a run at that attempt done",
            delivery.fails_first_wrong.is_empty(),
            delivery.fails_first_wrong.clone(),
        )
        .cases(delivery.fails_first)
        .needing_cases(
            accounting.jobs >= crate::job::FAIL_FIRST_EVERY,
            "one job in ten fails its first attempt, and none was acknowledged",
        ),
    );
    rows.push(
        Row::none("jobs that never fail, dead", &delivery.dead_healthy).cases(
            delivery
                .enqueued
                .saturating_sub(delivery.poison + delivery.always_failing),
        ),
    );
    rows.push(
        Row::none(
            "completed with no finished run (after its last stopped run)",
            &delivery.completed_unrun,
        )
        .cases(delivery.completed),
    );
    if store == "redis" {
        rows.push(Row::info(
            "rows of rolled-back transactions",
            "skipped: Redis has no transactional enqueue".to_owned(),
        ));
    } else {
        rows.push(
            Row::must(
                "rows of rolled-back transactions",
                format!(
                    "{} (of {} rolled-back jobs)",
                    delivery.rolled_back_present.len(),
                    evidence.rolled_back.len()
                ),
                "0",
                delivery.rolled_back_present.is_empty(),
                delivery.rolled_back_present.clone(),
            )
            .cases(evidence.rolled_back.len()),
        );
    }
    if store == "sqlite" {
        rows.push(
            Row::must(
                "rows of transactions the producer was killed inside",
                format!(
                    "{} (of {} jobs in {} kills inside a transaction)",
                    delivery.killed_in_tx_present.len(),
                    evidence.killed_in_tx.len(),
                    evidence.faults.producer_kills_in_tx
                ),
                "0",
                delivery.killed_in_tx_present.is_empty(),
                delivery.killed_in_tx_present.clone(),
            )
            .cases(evidence.killed_in_tx.len()),
        );
        let integrity = &evidence.faults.integrity;
        let broken: Vec<String> = integrity
            .iter()
            .enumerate()
            .filter(|(_, result)| result.as_str() != "ok")
            .map(|(i, result)| format!("check {}: {result}", i + 1))
            .collect();
        rows.push(
            Row::must(
                "PRAGMA integrity_check after every fault and at the end",
                format!(
                    "{} of {} ok",
                    integrity.len() - broken.len(),
                    integrity.len()
                ),
                "all ok",
                broken.is_empty(),
                broken,
            )
            .cases(integrity.len())
            .needing_cases(true, "no integrity check was written"),
        );
        let (checked, wrong) = pragmas(evidence);
        rows.push(
            Row::must(
                "SQLite connections at synchronous=FULL (2), journal_mode=WAL",
                format!(
                    "{checked} process(es) checked, {} wrong or unchecked",
                    wrong.len()
                ),
                "every worker that ran a job and every producer: 2 and wal on each pooled connection",
                wrong.is_empty(),
                wrong,
            )
            .cases(checked)
            .needing_cases(true, "no process wrote its connections' pragmas"),
        );
    }
    // A quick run has three pauses. Where the acks of its zombies went unverified (their
    // process died before it wrote the answers down, as later faults often make it), the
    // refusals the workers counted in all still show the store fenced late acks: evidence
    // that the check was exercised, never a pass for an ack that was taken.
    let fencing_seen_unattributed = if quick && delivery.zombie_acks_unverified > 0 {
        usize::try_from(totals.stale).unwrap_or(usize::MAX)
    } else {
        0
    };
    rows.push(
        Row::must(
            "late acks of paused workers refused",
            format!(
                "{} of {} held runs finished after SIGCONT on a job run elsewhere, {} of those acks counted refused{}; {} stopped by their fence{}{}",
                delivery.zombie_acks,
                delivery.paused_runs,
                delivery.zombie_acks_refused,
                match delivery.zombie_acks_withheld {
                    0 => String::new(),
                    withheld => format!(", {withheld} failed run(s) sent none (their lease known lost)"),
                },
                delivery.fenced_on_wake,
                match delivery.zombie_acks_unverified {
                    0 => String::new(),
                    unverified => format!("; {unverified} unverified (unanswered, or the process died before it counted the answers)"),
                },
                match fencing_seen_unattributed {
                    0 => String::new(),
                    stale => format!("; the workers counted {stale} late acks refused in all"),
                }
            ),
            &format!(
                "all refused (stale){}",
                if quick { "; quick: at least one answered and refused" } else { "" }
            ),
            delivery.zombie_acks_taken.is_empty(),
            delivery.zombie_acks_taken.clone(),
        )
        .cases(
            delivery.zombie_acks_refused
                + delivery.zombie_acks_taken.len()
                + fencing_seen_unattributed,
        )
        .needing_cases(
            quick,
            "no late ack of a paused worker was answered and counted refused: the fencing of acks went untested",
        ),
    );
    let fence_within = delivery::FENCE_SEEN_WITHIN.as_millis();
    rows.push(
        Row::must(
            "runs cut off by link down, ended within the lease",
            format!(
                "{} / {} ({} with work past the lease, {} of them stopped by their fence in time{})",
                delivery.cut_off_runs - delivery.unfenced.len(),
                delivery.cut_off_runs,
                delivery.past_lease,
                delivery.past_lease_fenced,
                match delivery.cut_off_died {
                    0 => String::new(),
                    died => format!("; {died} ended by their process's death"),
                }
            ),
            &format!("all by cut + lease + {fence_within} ms; work past the lease: cancelled"),
            delivery.unfenced.is_empty(),
            delivery.unfenced.clone(),
        )
        .cases(delivery.cut_off_runs)
        .needing_cases(
            quick && evidence.namespaced(),
            "links went down, and no run was cut off: self-fencing went untested",
        ),
    );
    if store != "sqlite" {
        let allowed = evidence
            .config
            .get("allow_no_netns")
            .is_some_and(|v| v == "1");
        let namespaced = evidence.namespaced();
        rows.push(
            Row::must(
                "link-down fault played (the store has a network)",
                if namespaced {
                    format!("namespaces: {} link down(s)", evidence.faults.links.len())
                } else if allowed {
                    "loopback: SKIPPED, accepted by --allow-no-netns".to_owned()
                } else {
                    "loopback: SKIPPED (no namespaces)".to_owned()
                },
                "played, or skipped only with --allow-no-netns",
                namespaced || allowed,
                if namespaced || allowed {
                    Vec::new()
                } else {
                    vec![
                        "the run had no network namespaces, so no link went down and self-fencing went untested; run as root, or pass --allow-no-netns to accept it".to_owned(),
                    ]
                },
            )
            .cases(evidence.faults.links.len()),
        );
    }
    rows.push(Row::must(
        "faults that hit work, per kind",
        hits.kinds
            .iter()
            .map(|kind| format!("{} {}/{}", kind.name, kind.hit, kind.played))
            .collect::<Vec<_>>()
            .join(", "),
        &format!(
            "≥ {} of each ({})",
            hits.required,
            if quick {
                "quick: at least one"
            } else {
                "full: at least half the cycles"
            }
        ),
        hits.held(),
        hits.short(),
    ));
    rows.push(Row::must(
        "retry and release paths taken (workers' counters, summed)",
        format!("retried {}, released {}", totals.retried, totals.released),
        "> 0 each",
        totals.retried > 0 && totals.released > 0,
        [("retried", totals.retried), ("released", totals.released)]
            .iter()
            .filter(|(_, count)| *count == 0)
            .map(|(what, _)| format!("no worker counted a job {what}: that path went untested"))
            .collect(),
    ));
    rows.push(
        Row::none(
            "worker exits without a cause (kill, poison abort, graceful restart, retirement)",
            &exits.unexplained,
        )
        .cases(exits.incarnations),
    );
    rows.push(
        Row::must(
            "workers restarted (SIGTERM) exited by themselves, status 0, final counters written",
            format!(
                "{} / {}",
                exits.restarted - exits.restart_failures.len(),
                exits.restarted
            ),
            &format!("all, within {} s", settings::exit_patience().as_secs()),
            exits.restart_failures.is_empty(),
            exits.restart_failures.clone(),
        )
        .cases(exits.restarted),
    );
    rows.push(
        Row::must(
            "retired workers exited by themselves, status 0, final counters written",
            format!(
                "{} / {}",
                exits.retired - exits.retire_failures.len(),
                exits.retired
            ),
            "all",
            exits.retire_failures.is_empty() && evidence.faults.retire.is_some(),
            exits.retire_failures.clone(),
        )
        .cases(exits.retired),
    );
    rows.push(Row::none(
        "`panicked at` in the workers' and the producer's stderr",
        &evidence.anomalies.panics,
    ));
    rows.push(
        Row::must(
            "max concurrent runs (global concurrency limit)",
            limits.max_running.to_string(),
            &format!("≤ {}", limits.units),
            limits.concurrency_held(),
            Vec::new(),
        )
        .cases(evidence.runs.len()),
    );
    rows.push(
        Row::must(
            "max starts in any 1 s (global rate limit)",
            format!(
                "{} (window from {})",
                limits.max_starts_per_window, limits.busiest_window
            ),
            &format!(
                "≤ {} ({}/s + burst {} + 50 ms skew)",
                limits.rate_allowance,
                settings::RATE_PER_SECOND,
                settings::RATE_BURST
            ),
            limits.rate_held(),
            Vec::new(),
        )
        .cases(evidence.runs.len()),
    );
    rows.push(Row::must(
        "unreadable ledger lines",
        evidence.unreadable.to_string(),
        "0",
        evidence.unreadable == 0,
        Vec::new(),
    ));
    Report { rows }
}

/// The median and the largest of sorted µs, in ms.
fn percentiles(sorted: &[u64]) -> Option<(u64, u64)> {
    Some((sorted.get(sorted.len() / 2)? / 1000, sorted.last()? / 1000))
}

/// SQLite: how many processes wrote their connections' pragmas, and what is wrong: a line
/// with a value other than `synchronous=2` and `journal_mode=wal` (or an error), or a
/// worker incarnation that ran a job without a line.
fn pragmas(evidence: &Evidence) -> (usize, Vec<String>) {
    let mut wrong: Vec<String> = evidence
        .pragmas
        .iter()
        .filter(|line| {
            line.error.is_some()
                || line.connections == 0
                || line.synchronous != "2"
                || line.journal_mode != "wal"
        })
        .map(|line| match &line.error {
            Some(error) => format!("{}: could not read its pragmas: {error}", line.process),
            None => format!(
                "{}: synchronous={} journal_mode={} on {} connection(s)",
                line.process, line.synchronous, line.journal_mode, line.connections
            ),
        })
        .collect();
    let checked: std::collections::BTreeSet<&str> = evidence
        .pragmas
        .iter()
        .map(|line| line.process.as_str())
        .collect();
    let ran: std::collections::BTreeSet<&str> = evidence
        .runs
        .iter()
        .map(|run| run.process.as_str())
        .collect();
    wrong.extend(
        ran.difference(&checked)
            .map(|process| format!("{process} ran jobs and wrote no pragmas line")),
    );
    (evidence.pragmas.len(), wrong)
}

/// What the workers counted, summed over every incarnation's last counters line (a killed
/// one's last periodic line: a second old at most).
#[derive(Debug, Default)]
struct CounterTotals {
    completed: u64,
    retried: u64,
    dead: u64,
    released: u64,
    stale: u64,
}

impl CounterTotals {
    fn of(evidence: &Evidence) -> CounterTotals {
        let mut totals = CounterTotals::default();
        for line in evidence.counters.values().filter_map(|lines| lines.last()) {
            totals.completed += line.completed;
            totals.retried += line.retried;
            totals.dead += line.dead;
            totals.released += line.released;
            totals.stale += line.stale;
        }
        totals
    }
}

/// `kill 20, pause 20, ...`, from the faults ledger.
fn faults_summary(evidence: &Evidence) -> String {
    let faults = &evidence.faults;
    let aborts = faults
        .exits
        .iter()
        .filter(|(_, _, how)| how.contains("abort"))
        .count();
    let mut summary = format!("kill -9 {}", faults.kills.len());
    if !faults.kill_alls.is_empty() {
        summary.push_str(&format!(
            " ({} of them in {} kills of every process)",
            faults.kill_all_workers,
            faults.kill_alls.len()
        ));
    }
    summary.push_str(&format!(", SIGSTOP {}", faults.pauses.len()));
    summary.push_str(&format!(", graceful restart {}", faults.terms.len()));
    match evidence.store() {
        "sqlite" => summary.push_str(&format!(
            ", producer kill -9 {} ({} inside its transaction)",
            faults.producer_kills, faults.producer_kills_in_tx
        )),
        store => summary.push_str(&format!(
            ", link down {}, {} crash {}",
            faults.links.len(),
            if store == "redis" {
                "redis-server"
            } else {
                "db"
            },
            faults.db.len()
        )),
    }
    summary.push_str(&format!(", poison aborts {aborts}"));
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict<'a>(report: &'a Report, check: &str) -> (&'a Row, &'static str) {
        let row = report
            .rows
            .iter()
            .find(|row| row.check.starts_with(check))
            .unwrap_or_else(|| panic!("no row `{check}`"));
        let verdict = match row.must {
            None => "",
            Some(true) if row.vacuous() => "n/a",
            Some(true) => "ok",
            Some(false) => "FAILED",
        };
        (row, verdict)
    }

    fn run_on(store: &str, network: &str, mode: &str) -> Evidence {
        let mut evidence = Evidence::default();
        for (key, value) in [("store", store), ("network", network), ("mode", mode)] {
            evidence.config.insert(key.to_owned(), value.to_owned());
        }
        evidence
    }

    #[test]
    fn a_must_with_no_case_says_so_and_a_quick_run_needs_cases_where_it_is_the_evidence() {
        let report = judge(&run_on("postgres", "namespaces", "full"));
        assert_eq!(
            verdict(&report, "late acks of paused workers refused").1,
            "n/a"
        );
        assert_eq!(
            verdict(&report, "runs cut off by link down").1,
            "n/a",
            "a full run leaves it to the hits"
        );
        let report = judge(&run_on("postgres", "namespaces", "quick"));
        assert_eq!(
            verdict(&report, "late acks of paused workers refused").1,
            "FAILED"
        );
        assert_eq!(verdict(&report, "runs cut off by link down").1, "FAILED");
        assert!(!report.passed());
    }

    #[test]
    fn a_store_with_a_network_and_no_namespaces_fails_unless_allowed() {
        let report = judge(&run_on("redis", "loopback", "full"));
        assert_eq!(verdict(&report, "link-down fault played").1, "FAILED");
        let mut evidence = run_on("redis", "loopback", "full");
        evidence
            .config
            .insert("allow_no_netns".to_owned(), "1".to_owned());
        let report = judge(&evidence);
        let (row, verdict) = verdict(&report, "link-down fault played");
        assert_eq!(verdict, "n/a", "{row:?}");
        assert!(row.observed.contains("--allow-no-netns"));
        // SQLite has no network: nothing to play.
        let report = judge(&run_on("sqlite", "one-host", "quick"));
        assert!(
            !report
                .rows
                .iter()
                .any(|row| row.check.starts_with("link-down fault played"))
        );
    }

    #[test]
    fn the_retry_and_release_paths_must_be_taken() {
        let mut evidence = run_on("postgres", "namespaces", "full");
        let report = judge(&evidence);
        assert_eq!(verdict(&report, "retry and release paths").1, "FAILED");
        evidence.counters.insert(
            "w1#1".to_owned(),
            vec![evidence::Counters {
                t: 1,
                troubled: 0,
                stale: 0,
                unrecorded: 0,
                last: true,
                retried: 3,
                released: 1,
                completed: 10,
                dead: 0,
            }],
        );
        let report = judge(&evidence);
        assert_eq!(verdict(&report, "retry and release paths").1, "ok");
    }
}
