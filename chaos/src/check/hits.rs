//! Which faults hit work. A kill of an idle worker redelivers nothing, a pause of one
//! leaves no late ack to refuse, a link down that cuts off no long run tests no fence, a
//! graceful restart whose runs all end within the grace gives nothing back: the MUSTs
//! about them would hold of a library that does nothing. Each kind must have hit
//! work in enough of its cycles — at least half in a full run, at least once in a quick one
//! — judged from the ledgers, not from what the orchestrator expected to hit.

use super::delivery::Delivery;
use super::evidence::Evidence;

/// One kind of fault: how often it was played, and how often it hit work.
#[derive(Debug)]
pub(crate) struct Kind {
    pub(crate) name: &'static str,
    pub(crate) played: usize,
    pub(crate) hit: usize,
}

/// Every kind the run's store and network play.
#[derive(Debug)]
pub(crate) struct Hits {
    pub(crate) kinds: Vec<Kind>,
    /// The fewest hits each kind needs.
    pub(crate) required: usize,
    /// Kills of workers (alone or with every process) that caught a run.
    pub(crate) kills_holding: usize,
}

impl Hits {
    pub(crate) fn held(&self) -> bool {
        self.kinds.iter().all(|kind| kind.hit >= self.required)
    }

    pub(crate) fn short(&self) -> Vec<String> {
        self.kinds
            .iter()
            .filter(|kind| kind.hit < self.required)
            .map(|kind| {
                format!(
                    "{}: {} of {} hit work, {} needed",
                    kind.name, kind.hit, kind.played, self.required
                )
            })
            .collect()
    }
}

pub(crate) fn count(evidence: &Evidence, delivery: &Delivery) -> Hits {
    let faults = &evidence.faults;
    let cycles = evidence.cycles();
    let required = if evidence.quick() {
        1
    } else {
        cycles.div_ceil(2)
    }
    .min(cycles);
    let holding = |t: u64, process: &str| evidence.open_at(t, |run| run.process == process).count();
    let single_kills: Vec<_> = faults.kills.iter().filter(|kill| !kill.of_all).collect();
    let kills_holding = faults
        .kills
        .iter()
        .filter(|kill| holding(kill.t, &kill.process) > 0)
        .count();
    let mut kinds = vec![
        Kind {
            name: "kill -9",
            played: single_kills.len(),
            hit: single_kills
                .iter()
                .filter(|kill| holding(kill.t, &kill.process) > 0)
                .count(),
        },
        Kind {
            name: "SIGSTOP",
            played: faults.pauses.len(),
            hit: faults
                .pauses
                .iter()
                .filter(|(process, span)| holding(span.from, process) > 0)
                .count(),
        },
    ];
    kinds.push(Kind {
        name: "graceful restart (a run stopped at the grace, given back)",
        played: faults.terms.len(),
        hit: delivery.restarts_stopping,
    });
    if evidence.store() == "sqlite" {
        kinds.push(Kind {
            name: "kill of every process",
            played: faults.kill_alls.len(),
            hit: faults
                .kill_alls
                .iter()
                .filter(|group| {
                    group.iter().any(|&at| {
                        let kill = &faults.kills[at];
                        holding(kill.t, &kill.process) > 0
                    })
                })
                .count(),
        });
        kinds.push(Kind {
            name: "producer killed inside its transaction",
            played: cycles,
            hit: faults.producer_kills_in_tx,
        });
    } else {
        kinds.push(Kind {
            name: "store crash (runs going)",
            played: faults.db.len(),
            hit: faults
                .db
                .iter()
                .filter(|span| evidence.open_at(span.from, |_| true).next().is_some())
                .count(),
        });
        if evidence.namespaced() {
            kinds.push(Kind {
                name: "link down (a run whose work outlasts the lease)",
                played: faults.links.len(),
                hit: delivery.links_past_lease,
            });
        }
    }
    Hits {
        kinds,
        required,
        kills_holding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::evidence::{Kill, Run, Span};

    /// A PostgreSQL run on loopback: `cycles` pauses, store crashes and kills, ten seconds
    /// apart; the first `hit` of each catch a run, the rest nothing.
    fn evidence(mode: &str, cycles: usize, hit: usize) -> Evidence {
        let mut evidence = Evidence::default();
        evidence.config.insert("mode".to_owned(), mode.to_owned());
        evidence
            .config
            .insert("cycles".to_owned(), cycles.to_string());
        evidence
            .config
            .insert("store".to_owned(), "postgres".to_owned());
        for i in 0..cycles {
            let t = 10_000_000 * (i as u64 + 1);
            let process = format!("w1#{}", i + 1);
            if i < hit {
                for at in [t, t + 5_000_000] {
                    evidence.runs.push(Run {
                        job: i64::try_from(at).unwrap_or(0),
                        n: at,
                        attempt: 1,
                        process: process.clone(),
                        start: at - 100_000,
                        end: None,
                        poison: false,
                        work_ms: Some(1000),
                    });
                }
            }
            let outage = Span {
                from: t + 5_000_000,
                to: t + 8_000_000,
            };
            evidence.faults.pauses.push((process.clone(), outage));
            evidence.faults.db.push(outage);
            evidence.faults.terms.push(crate::check::evidence::Term {
                process: process.clone(),
                t: t + 8_500_000,
            });
            evidence.faults.kills.push(Kill {
                process,
                t: t + 9_000_000,
                of_all: false,
            });
        }
        evidence.faults.index_deaths();
        evidence
    }

    /// The graceful restarts of which `hit` stopped a run.
    fn stopping(hit: usize) -> Delivery {
        Delivery {
            restarts_stopping: hit,
            ..Delivery::default()
        }
    }

    #[test]
    fn a_full_run_needs_half_its_cycles_to_hit_work() {
        let hits = count(&evidence("full", 20, 10), &stopping(10));
        assert!(hits.held(), "{:?}", hits.short());
        let hits = count(&evidence("full", 20, 9), &stopping(9));
        assert_eq!(hits.required, 10);
        assert_eq!(hits.short().len(), 4, "{:?}", hits.short());
    }

    #[test]
    fn a_quick_run_needs_one_hit_of_each() {
        assert!(count(&evidence("quick", 3, 1), &stopping(1)).held());
        let hits = count(&evidence("quick", 3, 0), &stopping(0));
        assert!(!hits.held());
        assert_eq!(hits.kills_holding, 0);
        // A graceful restart that stopped no run proves nothing either.
        let hits = count(&evidence("quick", 3, 3), &stopping(0));
        assert_eq!(hits.short().len(), 1, "{:?}", hits.short());
    }
}
