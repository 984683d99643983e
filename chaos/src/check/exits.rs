//! Process ends: every worker exit has a cause, and the run ends gracefully.
//!
//! A worker incarnation may end by a kill the harness wrote first (`kill`, then SIGKILL) or
//! by a poison job's abort (SIGABRT, its ledger's `start` of a poison job before it). One
//! asked to stop — by a graceful restart (`term`) or at the end of the run (`retire`) —
//! must exit by itself, with status 0, after writing its final counters line. Anything
//! else — a crash, a panic that ended the process, an exit of its own mid-run, a shutdown
//! that hung until the harness killed it — fails the run.

use std::collections::{BTreeMap, BTreeSet};

use super::evidence::Evidence;

/// The exits, sorted out.
#[derive(Debug, Default)]
pub(crate) struct Exits {
    /// Worker incarnations started.
    pub(crate) incarnations: usize,
    /// Exits by cause.
    pub(crate) by_cause: BTreeMap<&'static str, usize>,
    /// Exits (or their absence) with no cause, as readable evidence.
    pub(crate) unexplained: Vec<String>,
    /// Workers asked to stop at the end, and those that did not exit as they must.
    pub(crate) retired: usize,
    pub(crate) retire_failures: Vec<String>,
    /// Workers stopped by a graceful restart (SIGTERM), and those that did not exit as they
    /// must.
    pub(crate) restarted: usize,
    pub(crate) restart_failures: Vec<String>,
}

pub(crate) fn check(evidence: &Evidence) -> Exits {
    let faults = &evidence.faults;
    let mut found = Exits::default();
    let mut exits: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for (process, t, status) in &faults.exits {
        exits
            .entry(process.as_str())
            .or_insert((*t, status.as_str()));
    }
    let mut poisoned: BTreeMap<&str, u64> = BTreeMap::new();
    for run in evidence.runs.iter().filter(|run| run.poison) {
        poisoned.entry(run.process.as_str()).or_insert(run.start);
    }
    let with_final: BTreeSet<&str> = evidence
        .counters
        .iter()
        .filter(|(_, lines)| lines.iter().any(|line| line.last))
        .map(|(process, _)| process.as_str())
        .collect();
    let retired: BTreeSet<&str> = faults.retired.iter().map(String::as_str).collect();
    let retire_killed: BTreeSet<&str> = faults.retire_kills.iter().map(String::as_str).collect();
    let termed: BTreeMap<&str, u64> = faults
        .terms
        .iter()
        .map(|term| (term.process.as_str(), term.t))
        .collect();
    let term_killed: BTreeSet<&str> = faults.term_kills.iter().map(String::as_str).collect();
    // What a process asked to stop did wrong: not gone in time, a status other than 0, no
    // final counters line.
    let graceful = |process: &str, exit: Option<(u64, &str)>, killed: bool| {
        let mut wrong = Vec::new();
        if killed {
            wrong.push("still running when the patience ran out: killed".to_owned());
        }
        match exit {
            Some((_, "exit:0")) => {}
            Some((t, status)) => wrong.push(format!("ended {status} at {t}")),
            None => wrong.push("no exit recorded".to_owned()),
        }
        if !with_final.contains(process) {
            wrong.push("no final counters line".to_owned());
        }
        (!wrong.is_empty()).then(|| format!("{process}: {}", wrong.join("; ")))
    };

    for (process, spawned) in &faults.spawns {
        let process = process.as_str();
        found.incarnations += 1;
        let exit = exits.get(process).copied();
        let killed = faults
            .kills
            .iter()
            .any(|kill| kill.process == process && exit.is_none_or(|(t, _)| kill.t <= t));
        let cause = match exit {
            Some((_, "signal:9(kill)")) if killed => Some("killed"),
            Some((t, "signal:6(abort)")) if poisoned.get(process).is_some_and(|&p| p <= t) => {
                Some("aborted by a poison job")
            }
            _ if termed
                .get(process)
                .is_some_and(|&t| exit.is_none_or(|(exited, _)| t <= exited)) =>
            {
                found.restarted += 1;
                let wrong = graceful(process, exit, term_killed.contains(process));
                found.restart_failures.extend(wrong);
                Some("restarted gracefully (SIGTERM)")
            }
            _ if retired.contains(process) => {
                found.retired += 1;
                let wrong = graceful(process, exit, retire_killed.contains(process));
                found.retire_failures.extend(wrong);
                Some("retired")
            }
            _ => None,
        };
        match cause {
            Some(cause) => *found.by_cause.entry(cause).or_default() += 1,
            None => found.unexplained.push(match exit {
                Some((t, status)) => format!(
                    "{process} (started {spawned}) ended {status} at {t}{}",
                    if killed {
                        ", after a kill line but not by SIGKILL"
                    } else if poisoned.contains_key(process) {
                        ", after a poison job's start but not by its abort"
                    } else {
                        ", no kill or poison job of the harness's before it"
                    }
                ),
                None => format!("{process} (started {spawned}): no exit recorded"),
            }),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::evidence::{Counters, Kill, Run, Term};

    fn evidence() -> Evidence {
        let mut evidence = Evidence::default();
        for (process, t) in [("w1#1", 1), ("w2#1", 1), ("w3#1", 1), ("w1#2", 50)] {
            evidence.faults.spawns.push((process.to_owned(), t));
        }
        evidence.faults.kills.push(Kill {
            process: "w1#1".to_owned(),
            t: 40,
            of_all: false,
        });
        evidence
            .faults
            .exits
            .push(("w1#1".to_owned(), 41, "signal:9(kill)".to_owned()));
        evidence.runs.push(Run {
            job: 9,
            n: 9,
            attempt: 1,
            process: "w2#1".to_owned(),
            start: 60,
            end: None,
            poison: true,
            work_ms: Some(0),
        });
        evidence
            .faults
            .exits
            .push(("w2#1".to_owned(), 61, "signal:6(abort)".to_owned()));
        evidence.faults.retire = Some(100);
        evidence.faults.retired = vec!["w3#1".to_owned(), "w1#2".to_owned()];
        for process in ["w3#1", "w1#2"] {
            evidence
                .faults
                .exits
                .push((process.to_owned(), 101, "exit:0".to_owned()));
            evidence.counters.insert(
                process.to_owned(),
                vec![Counters {
                    t: 101,
                    troubled: 0,
                    stale: 0,
                    unrecorded: 0,
                    last: true,
                    retried: 0,
                    released: 0,
                    completed: 0,
                    dead: 0,
                }],
            );
        }
        evidence
    }

    #[test]
    fn kills_poison_aborts_and_a_graceful_end_are_explained() {
        let found = check(&evidence());
        assert!(found.unexplained.is_empty(), "{:?}", found.unexplained);
        assert!(
            found.retire_failures.is_empty(),
            "{:?}",
            found.retire_failures
        );
        assert_eq!((found.incarnations, found.retired), (4, 2));
    }

    #[test]
    fn a_crash_or_an_exit_of_its_own_is_not() {
        let mut evidence = evidence();
        // w2#1 segfaults instead; w3#1 exits 1 before the end.
        evidence.faults.exits[1].2 = "signal:11".to_owned();
        evidence.faults.exits[2] = ("w3#1".to_owned(), 90, "exit:1".to_owned());
        evidence.faults.retired = vec!["w1#2".to_owned()];
        let found = check(&evidence);
        assert_eq!(found.unexplained.len(), 2, "{:?}", found.unexplained);
    }

    #[test]
    fn a_graceful_restart_must_exit_by_itself() {
        let mut evidence = evidence();
        evidence.faults.spawns.push(("w3#2".to_owned(), 200));
        evidence.faults.terms.push(Term {
            process: "w3#2".to_owned(),
            t: 300,
        });
        evidence
            .faults
            .exits
            .push(("w3#2".to_owned(), 301, "exit:0".to_owned()));
        evidence.counters.insert(
            "w3#2".to_owned(),
            vec![Counters {
                t: 301,
                troubled: 0,
                stale: 0,
                unrecorded: 0,
                last: true,
                retried: 0,
                released: 2,
                completed: 0,
                dead: 0,
            }],
        );
        let found = check(&evidence);
        assert!(found.unexplained.is_empty(), "{:?}", found.unexplained);
        assert!(found.restart_failures.is_empty());
        assert_eq!(found.restarted, 1);
        // Killed once its patience ran out: the SIGTERM was not heeded.
        evidence.faults.term_kills.push("w3#2".to_owned());
        let last = evidence.faults.exits.len() - 1;
        evidence.faults.exits[last].2 = "signal:9(kill)".to_owned();
        let found = check(&evidence);
        assert_eq!(found.restart_failures.len(), 1, "{:?}", found);
        assert!(found.unexplained.is_empty());
    }

    #[test]
    fn a_hung_or_silent_shutdown_fails() {
        let mut evidence = evidence();
        evidence.faults.retire_kills.push("w3#1".to_owned());
        evidence.faults.exits[2].2 = "signal:9(kill)".to_owned();
        evidence.counters.remove("w1#2");
        let found = check(&evidence);
        assert_eq!(
            found.retire_failures.len(),
            2,
            "{:?}",
            found.retire_failures
        );
        assert!(found.unexplained.is_empty());
    }
}
