//! Every job offered, accounted for: the producer draws jobs `0..jobs` (`run.conf`), and
//! each must end in one of the ways the run can explain. A store that drops a job and
//! answers for the others would otherwise pass every check keyed by the ids it answered.
//!
//! A job `n` is accounted for when it is, in this order:
//!
//! 1. **acknowledged**: an `enqueued` line gave it an id (the lost check then holds the
//!    store to that id's row);
//! 2. **rolled back**: its transaction was rolled back on purpose (the rolled-back check
//!    holds the store to no row);
//! 3. **killed inside a transaction**: the producer was killed between the transaction's
//!    inserts and its commit (likewise no row);
//! 4. **given up**: refused for the whole retry window (a MUST of its own holds these to 0);
//! 5. **a row without an acknowledgement**: its batch committed but the answer was lost
//!    (a store crash, a kill), and the row is there;
//! 6. **cut off by a producer kill, no row**: offered by a producer that was killed before
//!    the answer, and not committed; a killed producer does not offer it again.
//!
//! Anything else fails: a job offered and answered with no id (a short answer), offered and
//! never answered by a producer that went on, or never offered at all.

use std::collections::BTreeSet;

use super::evidence::Evidence;

/// The jobs offered, sorted out.
#[derive(Debug, Default)]
pub(crate) struct Accounting {
    /// `jobs=` of `run.conf`: the jobs the producer was to offer, `0..jobs`.
    pub(crate) jobs: u64,
    /// How many ended each way, in the order above.
    pub(crate) by_end: Vec<(&'static str, usize)>,
    /// Jobs accounted for by none of them, as readable evidence.
    pub(crate) unaccounted: Vec<String>,
}

impl Accounting {
    pub(crate) fn accounted(&self) -> usize {
        self.by_end.iter().map(|(_, count)| count).sum()
    }

    /// `acknowledged 520, rolled back 26, …`, the ways that held any.
    pub(crate) fn summary(&self) -> String {
        let ways: Vec<String> = self
            .by_end
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(way, count)| format!("{way} {count}"))
            .collect();
        if ways.is_empty() {
            "none".to_owned()
        } else {
            ways.join(", ")
        }
    }
}

pub(crate) fn check(evidence: &Evidence) -> Accounting {
    let jobs = evidence.config_number("jobs").unwrap_or(0);
    let acknowledged: BTreeSet<u64> = evidence.promises.values().map(|p| p.n).collect();
    let unacknowledged_rows = evidence.unacknowledged_ns();
    let offered = &evidence.offered;
    let ways: [(&'static str, &dyn Fn(u64) -> bool); 6] = [
        ("acknowledged", &|n| acknowledged.contains(&n)),
        ("rolled back", &|n| evidence.rolled_back.contains(&n)),
        ("killed inside a transaction", &|n| {
            evidence.killed_in_tx.contains(&n)
        }),
        ("given up", &|n| offered.gave_up.contains(&n)),
        ("a row without an acknowledgement", &|n| {
            unacknowledged_rows.contains(&n)
        }),
        ("cut off by a producer kill, no row", &|n| {
            offered.cut_off.contains(&n)
        }),
    ];
    let mut found = Accounting {
        jobs,
        by_end: ways.iter().map(|(way, _)| (*way, 0)).collect(),
        unaccounted: Vec::new(),
    };
    for n in 0..jobs {
        match ways.iter().position(|(_, holds)| holds(n)) {
            Some(at) => found.by_end[at].1 += 1,
            None => found.unaccounted.push(why_unaccounted(evidence, n)),
        }
    }
    found
}

/// What the ledgers say of a job accounted for by none of the ways.
fn why_unaccounted(evidence: &Evidence, n: u64) -> String {
    let offered = &evidence.offered;
    let short = offered
        .short_answers
        .iter()
        .find(|(first, last, _, _)| (*first..=*last).contains(&n));
    if let Some((first, last, jobs, ids)) = short {
        return format!(
            "n={n}: offered in the batch n={first}..{last}, answered with {ids} id(s) for {jobs} job(s): no id for it, and no row holds it"
        );
    }
    if offered.unanswered.contains(&n) {
        return format!(
            "n={n}: offered, and no line of its own followed though the producer went on (no ack, no row)"
        );
    }
    if offered.recorded && !offered.ns.contains(&n) {
        return format!("n={n}: never offered (the producer skipped it)");
    }
    format!(
        "n={n}: offered, neither acknowledged, rolled back, killed inside a transaction nor given up, and no row holds it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::evidence::{Promise, Row};

    fn row(n: u64) -> Row {
        Row {
            state: "completed".to_owned(),
            n,
            poison: false,
            attempt: 1,
            max_attempts: 20,
            last_error: String::new(),
        }
    }

    /// Ten jobs offered in two batches; the first acknowledged whole.
    fn evidence() -> Evidence {
        let mut evidence = Evidence::default();
        evidence.config.insert("jobs".to_owned(), "10".to_owned());
        evidence.offered.recorded = true;
        evidence.offered.ns.extend(0..10);
        acknowledge(&mut evidence, 0..5);
        evidence
    }

    /// Jobs `ns` acknowledged with id `n + 1`, each with its row.
    fn acknowledge(evidence: &mut Evidence, ns: std::ops::Range<u64>) {
        for n in ns {
            let id = i64::try_from(n).unwrap_or(0) + 1;
            evidence.promises.insert(
                id,
                Promise {
                    n,
                    poison: false,
                    fails: 0,
                },
            );
            evidence.rows.insert(id, row(n));
        }
    }

    #[test]
    fn every_way_a_job_can_end_is_accounted_for() {
        let mut evidence = evidence();
        evidence.rolled_back.insert(5);
        evidence.killed_in_tx.insert(6);
        evidence.offered.gave_up.insert(7);
        // The answer to 8's batch was lost, the batch committed; 9's was not.
        evidence.rows.insert(100, row(8));
        evidence.offered.cut_off.extend([8, 9]);
        let found = check(&evidence);
        assert!(found.unaccounted.is_empty(), "{:?}", found.unaccounted);
        assert_eq!(found.accounted(), 10);
        assert_eq!(
            found.summary(),
            "acknowledged 5, rolled back 1, killed inside a transaction 1, given up 1, \
             a row without an acknowledgement 1, cut off by a producer kill, no row 1"
        );
    }

    #[test]
    fn a_job_a_short_answer_dropped_is_not() {
        // The batch 5..9 was answered with four ids, for 5..8: 9 has none and no row.
        let mut evidence = evidence();
        acknowledge(&mut evidence, 5..9);
        evidence.offered.short_answers.push((5, 9, 5, 4));
        let found = check(&evidence);
        assert_eq!(found.unaccounted.len(), 1, "{:?}", found.unaccounted);
        assert!(found.unaccounted[0].starts_with("n=9: offered in the batch n=5..9"));
    }

    #[test]
    fn a_job_never_offered_or_never_answered_is_not() {
        let mut evidence = evidence();
        evidence.offered.ns.remove(&9);
        evidence.offered.unanswered.insert(8);
        evidence.offered.cut_off.extend([5, 6, 7]);
        let found = check(&evidence);
        assert_eq!(found.unaccounted.len(), 2, "{:?}", found.unaccounted);
        assert!(found.unaccounted[0].contains("the producer went on"));
        assert!(found.unaccounted[1].contains("never offered"));
    }
}
