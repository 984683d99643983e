//! The checker: joins the ledgers with the jobs table and holds them to the contracts.
//!
//! MUSTs (the run fails on any): nothing lost; every id acknowledged once, for the job its
//! row holds; the queue drained, every row terminal, none cancelled; no unexplained
//! duplicate; every job a killed worker held starts again within the redelivery bound, and
//! kills that held runs are timed; poison jobs dead after exactly their attempts; jobs that
//! never fail never dead; no completed job without a run that finished; nothing of a
//! rolled-back transaction in the table; late acks of paused workers refused; runs cut off
//! by a partition ended in time, those whose work outlasts the lease by their fence; every
//! fault kind hit work often enough to prove something; every worker exit explained, the
//! retired ones graceful; no panic on any process's stderr; the global concurrency and
//! rate limits never exceeded; every ledger line readable.

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
    /// Evidence for a failed MUST.
    evidence: Vec<String>,
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
    println!(
        "{}",
        if report.passed() {
            "every MUST held"
        } else {
            "A MUST FAILED"
        }
    );
    Ok(report)
}

fn judge(evidence: &Evidence) -> Report {
    let delivery = delivery::check(evidence);
    let duplicates = duplicates::classify(evidence);
    let limits = limits::measure(evidence);
    let hits = hits::count(evidence, &delivery);
    let exits = exits::check(evidence);
    let mut rows = Vec::new();
    let mut info = |check: &str, observed: String| {
        rows.push(Row {
            check: check.to_owned(),
            observed,
            bound: String::new(),
            must: None,
            evidence: Vec::new(),
        });
    };
    info(
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
    );
    info("faults injected", faults_summary(evidence));
    info(
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
    );
    info("enqueued (acknowledged)", delivery.enqueued.to_string());
    info("completed", delivery.completed.to_string());
    info("dead", delivery.dead.to_string());
    info(
        "rows without an acknowledgement / batches given up",
        format!("{} / {}", delivery.unacknowledged_rows, evidence.gave_up),
    );
    info("runs started", evidence.runs.len().to_string());
    let causes: Vec<String> = duplicates
        .explained
        .iter()
        .map(|(cause, count)| format!("{cause} {count}"))
        .collect();
    info(
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
    );
    info(
        "late acks refused (stale, summed over workers)",
        stale_total(evidence).to_string(),
    );
    info(
        "links back up with work left / host took work again",
        format!("{} / {}", delivery.links, delivery.rejoined),
    );

    let must =
        |check: &str, observed: String, bound: &str, held: bool, evidence: Vec<String>| Row {
            check: check.to_owned(),
            observed,
            bound: bound.to_owned(),
            must: Some(held),
            evidence,
        };
    if evidence.lossy_fsync() {
        // Not a MUST: `appendfsync everysec` acknowledges writes up to a second before they
        // reach the disk, so a server crash may take them; the run says how many and which.
        rows.push(Row {
            check: "lost (REPORTED, not a MUST: appendfsync everysec loses up to 1 s of acknowledged writes on a server crash)".to_owned(),
            observed: if delivery.lost.is_empty() {
                "0".to_owned()
            } else {
                format!("{}: {}", delivery.lost.len(), delivery.lost.iter().take(20).cloned().collect::<Vec<_>>().join("; "))
            },
            bound: "reported".to_owned(),
            must: None,
            evidence: Vec::new(),
        });
    } else {
        rows.push(must(
            "lost",
            delivery.lost.len().to_string(),
            "0",
            delivery.lost.is_empty(),
            delivery.lost.clone(),
        ));
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
        rows.push(Row {
            check:
                "ids acknowledged once, for the job the row holds (REPORTED: appendfsync everysec)"
                    .to_owned(),
            observed: identity,
            bound: "reported".to_owned(),
            must: None,
            evidence: Vec::new(),
        });
    } else {
        rows.push(must(
            "ids acknowledged once, for the job the row holds",
            identity,
            "0 / 0",
            acknowledged_wrong.is_empty(),
            acknowledged_wrong,
        ));
    }
    rows.push(must(
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
    rows.push(must(
        "rows not in a terminal state (acknowledged or not)",
        format!("{} of {}", delivery.not_terminal.len(), evidence.rows.len()),
        "0",
        delivery.not_terminal.is_empty(),
        delivery.not_terminal.clone(),
    ));
    rows.push(must(
        "rows cancelled (nothing in the harness cancels a job)",
        delivery.cancelled.len().to_string(),
        "0",
        delivery.cancelled.is_empty(),
        delivery.cancelled.clone(),
    ));
    rows.push(must(
        "unexplained duplicates",
        duplicates.unexplained.len().to_string(),
        "0",
        duplicates.unexplained.is_empty(),
        duplicates.unexplained.clone(),
    ));
    let bound = settings::redelivery_bound();
    let bound_us = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
    let mut times = delivery.redeliveries.clone();
    times.sort_unstable();
    let mut late: Vec<String> = times
        .iter()
        .filter(|&&t| t > bound_us)
        .map(|t| format!("{} ms", t / 1000))
        .collect();
    let kills_holding = hits.kills_holding;
    if kills_holding > 0 && times.is_empty() {
        late.push(format!(
            "{kills_holding} kill(s) held runs, and no redelivery was timed"
        ));
    }
    rows.push(must(
        "redelivery after kill -9 (p50 / max)",
        match (times.get(times.len() / 2), times.last()) {
            (Some(p50), Some(max)) => format!(
                "{} ms / {} ms over {} jobs{}",
                p50 / 1000,
                max / 1000,
                times.len(),
                match delivery.reclaims_lost {
                    0 => String::new(),
                    lost => format!(" (+{lost} re-claimed by a worker that failed before starting it: not timed)"),
                }
            ),
            _ => format!("none timed ({kills_holding} kill(s) held runs)"),
        },
        &format!("≤ {} ms (lease + 2 sweeps + a store call)", bound.as_millis()),
        late.is_empty(),
        late,
    ));
    rows.push(must(
        "jobs held at a kill, never started again",
        delivery.not_redelivered.len().to_string(),
        "0",
        delivery.not_redelivered.is_empty(),
        delivery.not_redelivered.clone(),
    ));
    rows.push(must(
        "poison jobs dead after exactly max attempts",
        format!(
            "{} / {}",
            delivery.poison - delivery.poison_wrong.len(),
            delivery.poison
        ),
        &format!("all, at {}", settings::POISON_MAX_ATTEMPTS),
        delivery.poison_wrong.is_empty(),
        delivery.poison_wrong.clone(),
    ));
    rows.push(must(
        "jobs that never fail, dead",
        delivery.dead_healthy.len().to_string(),
        "0",
        delivery.dead_healthy.is_empty(),
        delivery.dead_healthy.clone(),
    ));
    rows.push(must(
        "completed with no finished run",
        delivery.completed_unrun.len().to_string(),
        "0",
        delivery.completed_unrun.is_empty(),
        delivery.completed_unrun.clone(),
    ));
    if evidence.store() == "redis" {
        rows.push(Row {
            check: "rows of rolled-back transactions".to_owned(),
            observed: "skipped: Redis has no transactional enqueue".to_owned(),
            bound: String::new(),
            must: None,
            evidence: Vec::new(),
        });
    } else {
        rows.push(must(
            "rows of rolled-back transactions",
            format!(
                "{} (of {} rolled-back jobs)",
                delivery.rolled_back_present.len(),
                evidence.rolled_back.len()
            ),
            "0",
            delivery.rolled_back_present.is_empty(),
            delivery.rolled_back_present.clone(),
        ));
    }
    if evidence.store() == "sqlite" {
        rows.push(must(
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
        ));
        let integrity = &evidence.faults.integrity;
        let broken: Vec<String> = integrity
            .iter()
            .enumerate()
            .filter(|(_, result)| result.as_str() != "ok")
            .map(|(i, result)| format!("check {}: {result}", i + 1))
            .collect();
        rows.push(must(
            "PRAGMA integrity_check after every fault and at the end",
            format!(
                "{} of {} ok",
                integrity.len() - broken.len(),
                integrity.len()
            ),
            "all ok",
            broken.is_empty() && !integrity.is_empty(),
            broken,
        ));
    }
    rows.push(must(
        "late acks of paused workers refused",
        format!(
            "{} of {} held runs finished after SIGCONT on a job run elsewhere; {} stopped by their fence{}",
            delivery.zombie_acks,
            delivery.paused_runs,
            delivery.fenced_on_wake,
            match delivery.zombie_acks_unverified {
                0 => String::new(),
                unverified => format!("; {unverified} unverified (unanswered, or the process died before it counted the answers)"),
            }
        ),
        "all refused (stale)",
        delivery.zombie_acks_taken.is_empty(),
        delivery.zombie_acks_taken.clone(),
    ));
    let fence_within = delivery::FENCE_SEEN_WITHIN.as_millis();
    rows.push(must(
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
    ));
    rows.push(must(
        "faults that hit work, per kind",
        hits.kinds
            .iter()
            .map(|kind| format!("{} {}/{}", kind.name, kind.hit, kind.played))
            .collect::<Vec<_>>()
            .join(", "),
        &format!(
            "≥ {} of each ({})",
            hits.required,
            if evidence.quick() {
                "quick: at least one"
            } else {
                "full: at least half the cycles"
            }
        ),
        hits.held(),
        hits.short(),
    ));
    rows.push(must(
        "worker exits without a cause (kill, poison abort, retirement)",
        exits.unexplained.len().to_string(),
        "0",
        exits.unexplained.is_empty(),
        exits.unexplained.clone(),
    ));
    rows.push(must(
        "retired workers exited by themselves, status 0, final counters written",
        format!(
            "{} / {}",
            exits.retired - exits.retire_failures.len(),
            exits.retired
        ),
        "all",
        exits.retire_failures.is_empty() && evidence.faults.retire.is_some(),
        exits.retire_failures.clone(),
    ));
    rows.push(must(
        "`panicked at` in the workers' and the producer's stderr",
        evidence.anomalies.panics.len().to_string(),
        "0",
        evidence.anomalies.panics.is_empty(),
        evidence.anomalies.panics.clone(),
    ));
    rows.push(must(
        "max concurrent runs (global concurrency limit)",
        limits.max_running.to_string(),
        &format!("≤ {}", limits.units),
        limits.concurrency_held(),
        Vec::new(),
    ));
    rows.push(must(
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
    ));
    rows.push(must(
        "unreadable ledger lines",
        evidence.unreadable.to_string(),
        "0",
        evidence.unreadable == 0,
        Vec::new(),
    ));
    Report { rows }
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

/// The refused acks every incarnation counted, from its last counters line.
fn stale_total(evidence: &Evidence) -> u64 {
    evidence
        .counters
        .values()
        .filter_map(|lines| lines.last())
        .map(|line| line.stale)
        .sum()
}
