//! What a run left, read back: the producer's promises, the store's rows, every run the
//! workers started, and every fault.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::ledger::{self, Line};

/// An acknowledged enqueue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Promise {
    pub(crate) n: u64,
    pub(crate) poison: bool,
}

/// A row of the jobs table, as dumped after the drain.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) state: String,
    pub(crate) n: u64,
    pub(crate) poison: bool,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) last_error: String,
}

/// How a run's handler ended, if its worker wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Done(u64),
    Cancelled(u64),
}

impl End {
    pub(crate) fn at(self) -> u64 {
        match self {
            End::Done(t) | End::Cancelled(t) => t,
        }
    }
}

/// One run of one job: from its `start` line to its `done` / `cancelled` line.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub(crate) job: i64,
    pub(crate) n: u64,
    pub(crate) attempt: u32,
    /// The worker incarnation, `w2#3`.
    pub(crate) process: String,
    pub(crate) start: u64,
    pub(crate) end: Option<End>,
    pub(crate) poison: bool,
}

impl Run {
    /// The worker host, `w2`.
    pub(crate) fn host(&self) -> &str {
        host_of(&self.process)
    }
}

/// `w2` of `w2#3`.
pub(crate) fn host_of(process: &str) -> &str {
    process.split('#').next().unwrap_or(process)
}

/// A time span, in ledger microseconds; `to` is `u64::MAX` for "until the end".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) from: u64,
    pub(crate) to: u64,
}

impl Span {
    pub(crate) fn meets(self, from: u64, to: u64) -> bool {
        self.from <= to && from <= self.to
    }
}

/// The faults, as the orchestrator wrote them.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// `kill` lines: the process and when.
    pub(crate) kills: Vec<(String, u64)>,
    /// SIGSTOP to SIGCONT, by process.
    pub(crate) pauses: Vec<(String, Span)>,
    /// Link down to up, by host.
    pub(crate) links: Vec<(String, Span)>,
    /// `pg_ctl stop -m immediate` to the restarted server.
    pub(crate) db: Vec<Span>,
    /// Every process end: the process, when, and how (`signal:6(abort)`...).
    pub(crate) exits: Vec<(String, u64, String)>,
    /// Kills of the producer, and of those the ones inside an open transaction.
    pub(crate) producer_kills: usize,
    pub(crate) producer_kills_in_tx: usize,
    /// Kills of every process at once (their workers' `kill` lines are in `kills` too).
    pub(crate) kill_alls: usize,
    pub(crate) kill_all_workers: usize,
    /// The results of SQLite's `integrity_check`, one per check.
    pub(crate) integrity: Vec<String>,
}

impl Faults {
    /// The spans in which `process` could not run or reach the store, earliest first:
    /// paused, cut off, dead, or the store down.
    pub(crate) fn troubles_of(&self, process: &str) -> Vec<(Span, &'static str)> {
        let host = host_of(process);
        let mut spans: Vec<(Span, &'static str)> = Vec::new();
        spans.extend(
            self.pauses
                .iter()
                .filter(|(p, _)| p == process)
                .map(|(_, span)| (*span, "paused")),
        );
        spans.extend(
            self.links
                .iter()
                .filter(|(h, _)| h == host)
                .map(|(_, span)| (*span, "link down")),
        );
        spans.extend(
            self.kills
                .iter()
                .filter(|(p, _)| p == process)
                .map(|(_, t)| {
                    (
                        Span {
                            from: *t,
                            to: u64::MAX,
                        },
                        "killed",
                    )
                }),
        );
        spans.extend(
            self.exits
                .iter()
                .filter(|(p, _, _)| p == process)
                .map(|(_, t, how)| {
                    (
                        Span {
                            from: *t,
                            to: u64::MAX,
                        },
                        if how.contains("abort") {
                            "aborted"
                        } else {
                            "exited"
                        },
                    )
                }),
        );
        spans.extend(self.db.iter().map(|span| (*span, "db crash")));
        spans.sort_by_key(|(span, _)| span.from);
        spans
    }

    /// When `process` stopped serving its runs for good or for a while, the first time
    /// after `after` (a DB crash does not count: the process keeps its runs).
    pub(crate) fn first_outage_after(&self, process: &str, after: u64) -> Option<u64> {
        self.troubles_of(process)
            .into_iter()
            .filter(|(span, what)| *what != "db crash" && span.to >= after)
            .map(|(span, _)| span.from.max(after))
            .min()
    }
}

/// A worker's counters line: when, and its lost-lease evidence so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counters {
    pub(crate) t: u64,
    /// lost_leases + unrecorded + stale: runs whose end the store did not take from it.
    pub(crate) troubled: u64,
    /// Ends the store refused: the lease had passed to another claim.
    pub(crate) stale: u64,
    /// Ends whose answer never came (the call failed or timed out): recorded or not, the
    /// process cannot tell.
    pub(crate) unrecorded: u64,
    /// Written at a graceful exit, after every run's end was answered.
    pub(crate) last: bool,
}

/// Everything read back.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) promises: BTreeMap<i64, Promise>,
    pub(crate) rolled_back: BTreeSet<u64>,
    /// Jobs of transactions the producer was killed inside, before their commit.
    pub(crate) killed_in_tx: BTreeSet<u64>,
    pub(crate) gave_up: usize,
    pub(crate) rows: BTreeMap<i64, Row>,
    /// Every run, by start time.
    pub(crate) runs: Vec<Run>,
    pub(crate) faults: Faults,
    /// Counters lines by process, in time order.
    pub(crate) counters: BTreeMap<String, Vec<Counters>>,
    /// Lines that could not be read.
    pub(crate) unreadable: usize,
}

impl Evidence {
    /// Reads `dir`: `run.conf`, `producer.log`, `faults.log`, `w*.log`, `jobs.tsv`.
    /// The store the run was on (`postgres` for runs from before stores were named).
    pub(crate) fn store(&self) -> &str {
        self.config.get("store").map_or("postgres", String::as_str)
    }

    /// Whether Redis ran with `appendfsync everysec`, where a crash may lose acknowledged
    /// writes.
    pub(crate) fn lossy_fsync(&self) -> bool {
        self.store() == "redis" && self.config.get("fsync").is_some_and(|f| f == "everysec")
    }

    pub(crate) fn load(dir: &Path) -> Result<Evidence, String> {
        let mut evidence = Evidence::default();
        let config = std::fs::read_to_string(dir.join("run.conf"))
            .map_err(|error| format!("run.conf: {error}"))?;
        evidence.config = config
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        evidence.read_producer(&dir.join("producer.log"))?;
        evidence.read_faults(&dir.join("faults.log"))?;
        let mut worker_logs: Vec<_> = std::fs::read_dir(dir)
            .map_err(|error| format!("{}: {error}", dir.display()))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                let name = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or_default();
                name.starts_with('w') && name.ends_with(".log")
            })
            .collect();
        worker_logs.sort();
        for path in worker_logs {
            evidence.read_worker(&path)?;
        }
        evidence.runs.sort_by_key(|run| (run.start, run.job));
        evidence.read_rows(&dir.join("jobs.tsv"))?;
        Ok(evidence)
    }

    fn lines(&mut self, path: &Path) -> Result<Vec<Line>, String> {
        let (lines, bad) = ledger::read(path)?;
        self.unreadable += bad;
        Ok(lines)
    }

    fn read_producer(&mut self, path: &Path) -> Result<(), String> {
        for line in self.lines(path)? {
            match line.kind.as_str() {
                "enqueued" => {
                    let (Some(job), Some(n)) = (line.number("job"), line.number("n")) else {
                        self.unreadable += 1;
                        continue;
                    };
                    let job = i64::try_from(job).unwrap_or(i64::MAX);
                    self.promises.insert(
                        job,
                        Promise {
                            n,
                            poison: line.number("poison") == Some(1),
                        },
                    );
                }
                "rolled-back" => self.rolled_back.extend(line.number("n")),
                "gave-up" => self.gave_up += 1,
                _ => {}
            }
        }
        Ok(())
    }

    fn read_faults(&mut self, path: &Path) -> Result<(), String> {
        let mut paused: BTreeMap<String, u64> = BTreeMap::new();
        let mut cut: BTreeMap<String, u64> = BTreeMap::new();
        let mut crashed = None;
        for line in self.lines(path)? {
            let worker = line.text("worker").unwrap_or_default().to_owned();
            match line.kind.as_str() {
                "kill" => self.faults.kills.push((worker, line.t)),
                "stop" => {
                    paused.insert(worker, line.t);
                }
                "cont" => {
                    let from = paused.remove(&worker).unwrap_or(line.t);
                    self.faults.pauses.push((worker, Span { from, to: line.t }));
                }
                "link-down" => {
                    cut.insert(host_of(&worker).to_owned(), line.t);
                }
                "link-up" => {
                    let host = host_of(&worker).to_owned();
                    let from = cut.remove(&host).unwrap_or(line.t);
                    self.faults.links.push((host, Span { from, to: line.t }));
                }
                "kill-producer" => {
                    self.faults.producer_kills += 1;
                    if let Some(ns) = line.text("ns") {
                        self.faults.producer_kills_in_tx += 1;
                        self.killed_in_tx
                            .extend(ns.split(',').filter_map(|n| n.parse::<u64>().ok()));
                    }
                }
                "kill-all" => {
                    self.faults.kill_alls += 1;
                    self.faults.kill_all_workers +=
                        usize::try_from(line.number("workers").unwrap_or(0)).unwrap_or(0);
                }
                "integrity" => self
                    .faults
                    .integrity
                    .push(line.text("result").unwrap_or_default().to_owned()),
                "db-crash" => crashed = Some(line.t),
                "db-up" => self.faults.db.push(Span {
                    from: crashed.take().unwrap_or(line.t),
                    to: line.t,
                }),
                "exit" => self.faults.exits.push((
                    worker,
                    line.t,
                    line.text("status").unwrap_or_default().to_owned(),
                )),
                _ => {}
            }
        }
        // A fault the run did not see end (it was interrupted) lasts until the end.
        self.faults.pauses.extend(
            paused
                .into_iter()
                .map(|(worker, from)| (worker, Span { from, to: u64::MAX })),
        );
        self.faults.links.extend(
            cut.into_iter()
                .map(|(host, from)| (host, Span { from, to: u64::MAX })),
        );
        self.faults
            .db
            .extend(crashed.map(|from| Span { from, to: u64::MAX }));
        Ok(())
    }

    fn read_worker(&mut self, path: &Path) -> Result<(), String> {
        let mut open: BTreeMap<(i64, u32, String), usize> = BTreeMap::new();
        for line in self.lines(path)? {
            let process = line.text("worker").unwrap_or_default().to_owned();
            if line.kind == "counters" {
                let count = |key: &str| line.number(key).unwrap_or(0);
                self.counters.entry(process).or_default().push(Counters {
                    t: line.t,
                    troubled: count("lost_leases") + count("unrecorded") + count("stale"),
                    stale: count("stale"),
                    unrecorded: count("unrecorded"),
                    last: count("final") == 1,
                });
                continue;
            }
            let (Some(job), Some(n), Some(attempt)) =
                (line.number("job"), line.number("n"), line.number("attempt"))
            else {
                continue;
            };
            let job = i64::try_from(job).unwrap_or(i64::MAX);
            let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
            let key = (job, attempt, process.clone());
            match line.kind.as_str() {
                "start" => {
                    open.insert(key, self.runs.len());
                    let poison = line.number("poison") == Some(1);
                    self.runs.push(Run {
                        job,
                        n,
                        attempt,
                        process,
                        start: line.t,
                        end: None,
                        poison,
                    });
                }
                "done" | "cancelled" => {
                    let end = if line.kind == "done" {
                        End::Done(line.t)
                    } else {
                        End::Cancelled(line.t)
                    };
                    match open.remove(&key) {
                        Some(at) => self.runs[at].end = Some(end),
                        None => self.unreadable += 1,
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn read_rows(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        for line in text.lines().skip(1) {
            let cells: Vec<&str> = line.splitn(7, '\t').collect();
            let parsed = (|| {
                Some((
                    cells.first()?.parse::<i64>().ok()?,
                    Row {
                        state: (*cells.get(1)?).to_owned(),
                        n: cells.get(2)?.parse().ok()?,
                        poison: *cells.get(3)? == "true",
                        attempt: cells.get(4)?.parse().ok()?,
                        max_attempts: cells.get(5)?.parse().ok()?,
                        last_error: cells.get(6).copied().unwrap_or_default().to_owned(),
                    },
                ))
            })();
            match parsed {
                Some((id, row)) => {
                    self.rows.insert(id, row);
                }
                None => self.unreadable += 1,
            }
        }
        Ok(())
    }
}
