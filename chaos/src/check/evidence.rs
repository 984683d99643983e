//! What a run left, read back: the producer's promises, the store's rows, every run the
//! workers started, every fault and process end, and what the processes said on stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::ledger::{self, Line};
use crate::settings;

/// An acknowledged enqueue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Promise {
    pub(crate) n: u64,
    pub(crate) poison: bool,
    /// The attempts that fail on purpose (`crate::job::ALWAYS`: every one).
    pub(crate) fails: u32,
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
    /// Its work done, it failed on purpose (the job said so): the store must retry it, or
    /// bury it at its last attempt.
    Failed(u64),
    Cancelled(u64),
}

impl End {
    pub(crate) fn at(self) -> u64 {
        match self {
            End::Done(t) | End::Failed(t) | End::Cancelled(t) => t,
        }
    }

    /// Whether the handler ran to the end of its work (done or failed on purpose), and
    /// not stopped by its token.
    pub(crate) fn finished_work(self) -> bool {
        matches!(self, End::Done(_) | End::Failed(_))
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
    /// The work it planned, from its `start` line (ledgers written before it was logged
    /// have none).
    pub(crate) work_ms: Option<u64>,
}

impl Run {
    /// The worker host, `w2`.
    pub(crate) fn host(&self) -> &str {
        host_of(&self.process)
    }

    /// When its work would have ended had nothing stopped it.
    pub(crate) fn planned_end(&self) -> Option<u64> {
        self.work_ms
            .map(|ms| self.start.saturating_add(ms.saturating_mul(1000)))
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

/// The spans longer than `longer_than` between consecutive `times` (of every worker's and
/// the producer's lines): the whole host stalled (its VM descheduled). Live workers write
/// their counters every second and a killed process is back within a second, so no fault
/// the harness plays leaves every ledger silent that long; one worker hung alone leaves the
/// others' lines going.
pub(crate) fn host_stalls(mut times: Vec<u64>, longer_than: std::time::Duration) -> Vec<Span> {
    let longer_than = u64::try_from(longer_than.as_micros()).unwrap_or(u64::MAX);
    times.sort_unstable();
    times
        .windows(2)
        .filter(|pair| pair[1] - pair[0] > longer_than)
        .map(|pair| Span {
            from: pair[0],
            to: pair[1],
        })
        .collect()
}

/// A `kill` line.
#[derive(Clone, Debug)]
pub(crate) struct Kill {
    pub(crate) process: String,
    pub(crate) t: u64,
    /// One of the kills of every process at once (SQLite).
    pub(crate) of_all: bool,
}

/// A `term` line: a graceful restart's SIGTERM.
#[derive(Clone, Debug)]
pub(crate) struct Term {
    pub(crate) process: String,
    pub(crate) t: u64,
}

/// The faults, as the orchestrator wrote them.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// `kill` lines, in order.
    pub(crate) kills: Vec<Kill>,
    /// Graceful restarts (SIGTERM), in order.
    pub(crate) terms: Vec<Term>,
    /// Workers that had not exited by themselves when a graceful restart's patience ran
    /// out.
    pub(crate) term_kills: Vec<String>,
    /// SIGSTOP to SIGCONT, by process.
    pub(crate) pauses: Vec<(String, Span)>,
    /// Link down to up, by host.
    pub(crate) links: Vec<(String, Span)>,
    /// `pg_ctl stop -m immediate` to the restarted server.
    pub(crate) db: Vec<Span>,
    /// Every process end: the process, when, and how (`signal:6(abort)`...).
    pub(crate) exits: Vec<(String, u64, String)>,
    /// Every worker process started: the process and when.
    pub(crate) spawns: Vec<(String, u64)>,
    /// When the workers were asked to stop at the end of the run, and which.
    pub(crate) retire: Option<u64>,
    pub(crate) retired: Vec<String>,
    /// Workers that had not exited by themselves when the retirement's patience ran out.
    pub(crate) retire_kills: Vec<String>,
    /// The live jobs left when the wait for the drain ended (`None`: no drain line).
    pub(crate) drain_left: Option<u64>,
    /// The first kill or exit of each process.
    deaths: BTreeMap<String, u64>,
    /// Kills of the producer, and of those the ones inside an open transaction.
    pub(crate) producer_kills: usize,
    pub(crate) producer_kills_in_tx: usize,
    /// Kills of every process at once: the indexes of their workers' `kill` lines in
    /// `kills`.
    pub(crate) kill_alls: Vec<Vec<usize>>,
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
                .filter(|kill| kill.process == process)
                .map(|kill| {
                    (
                        Span {
                            from: kill.t,
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
                        } else if how == "exit:0" {
                            GRACEFUL_EXIT
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

    /// When `process` died (killed or exited), if it did.
    pub(crate) fn death_of(&self, process: &str) -> Option<u64> {
        self.deaths.get(process).copied()
    }

    /// Indexes the first kill or exit of each process, for [`Faults::death_of`].
    pub(crate) fn index_deaths(&mut self) {
        let kills = self.kills.iter().map(|kill| (&kill.process, kill.t));
        let exits = self.exits.iter().map(|(process, t, _)| (process, *t));
        let mut deaths = BTreeMap::new();
        for (process, t) in kills.chain(exits) {
            deaths
                .entry(process.clone())
                .and_modify(|first: &mut u64| *first = (*first).min(t))
                .or_insert(t);
        }
        self.deaths = deaths;
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

/// The trouble a graceful exit (status 0) is: the process stops serving its runs, but only
/// after each run's end was recorded or given back, so it explains no rerun of a job.
pub(crate) const GRACEFUL_EXIT: &str = "exited gracefully";

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
    /// Failed runs the store took to retry, and jobs given back unrun or stopped (a
    /// shutdown's): the paths besides completion the run must have exercised.
    pub(crate) retried: u64,
    pub(crate) released: u64,
    /// Runs it saw completed and buried.
    pub(crate) completed: u64,
    pub(crate) dead: u64,
}

/// A `pragmas` line: what one process's SQLite connections run with.
#[derive(Clone, Debug)]
pub(crate) struct Pragmas {
    pub(crate) process: String,
    pub(crate) connections: u64,
    pub(crate) synchronous: String,
    pub(crate) journal_mode: String,
    pub(crate) error: Option<String>,
}

/// The producer's own account of the jobs it offered, from its `offer` lines and the line
/// each job then ends in (`enqueued`, `rolled-back`, `gave-up`).
#[derive(Debug, Default)]
pub(crate) struct Offered {
    /// Whether the ledger has `offer` lines at all (ledgers from before them do not).
    pub(crate) recorded: bool,
    /// Every job an `offer` line named.
    pub(crate) ns: BTreeSet<u64>,
    /// Jobs offered by a producer that was killed before their own line: the answer never
    /// came (a row may exist all the same, if their batch committed).
    pub(crate) cut_off: BTreeSet<u64>,
    /// Jobs offered by a producer that finished, with no line of their own.
    pub(crate) unanswered: BTreeSet<u64>,
    /// Jobs given up (their batch refused for `RETRY_FOR`).
    pub(crate) gave_up: BTreeSet<u64>,
    /// Enqueues answered with a number of ids other than their jobs': `first..=last`,
    /// jobs, ids.
    pub(crate) short_answers: Vec<(u64, u64, u64, u64)>,
}

/// What went wrong on the way in, outside the jobs' own lifecycle: ids the producer was
/// given twice, and panics the processes reported.
#[derive(Debug, Default)]
pub(crate) struct Anomalies {
    /// Job ids acknowledged by more than one enqueue.
    pub(crate) acknowledged_twice: Vec<String>,
    /// `panicked at` lines in the workers' and the producer's stderr: `file: line`.
    pub(crate) panics: Vec<String>,
}

/// Everything read back.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) promises: BTreeMap<i64, Promise>,
    pub(crate) rolled_back: BTreeSet<u64>,
    /// Jobs of transactions the producer was killed inside, before their commit.
    pub(crate) killed_in_tx: BTreeSet<u64>,
    pub(crate) offered: Offered,
    pub(crate) rows: BTreeMap<i64, Row>,
    /// Every run, by start time.
    pub(crate) runs: Vec<Run>,
    pub(crate) faults: Faults,
    /// Stalls of the whole host: spans longer than a lease in which no worker and no
    /// producer wrote a line (each live worker writes its counters every second), so every
    /// process, the store's included, was stopped at once. See [`host_stalls`].
    pub(crate) host_stalls: Vec<Span>,
    /// When the workers and the producer wrote each line, for [`host_stalls`].
    line_times: Vec<u64>,
    /// Counters lines by process, in time order.
    pub(crate) counters: BTreeMap<String, Vec<Counters>>,
    /// SQLite: what each process's connections run with.
    pub(crate) pragmas: Vec<Pragmas>,
    pub(crate) anomalies: Anomalies,
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

    /// Whether it was a quick run (CI's); runs from before the mode was written count as
    /// full ones.
    pub(crate) fn quick(&self) -> bool {
        self.config.get("mode").is_some_and(|mode| mode == "quick")
    }

    /// The cycles of each fault kind the schedule played.
    pub(crate) fn cycles(&self) -> usize {
        self.config
            .get("cycles")
            .and_then(|cycles| cycles.parse().ok())
            .unwrap_or(0)
    }

    /// Whether the hosts were network namespaces (and links went down).
    pub(crate) fn namespaced(&self) -> bool {
        self.config
            .get("network")
            .is_some_and(|network| network == "namespaces")
    }

    /// A number from `run.conf`, if it is there.
    pub(crate) fn config_number(&self, key: &str) -> Option<u64> {
        self.config.get(key).and_then(|value| value.parse().ok())
    }

    /// The runs open at `t` for which `on` holds: started before `t`, not ended by then,
    /// their process not dead by then. Poison runs are never open: they end their process
    /// on their first line.
    pub(crate) fn open_at<'a>(
        &'a self,
        t: u64,
        on: impl Fn(&Run) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Run> + 'a {
        self.runs.iter().filter(move |run| {
            !run.poison
                && run.start < t
                && run.end.is_none_or(|end| end.at() > t)
                && self
                    .faults
                    .death_of(&run.process)
                    .is_none_or(|died| died >= t)
                && on(run)
        })
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
        let line_times = std::mem::take(&mut evidence.line_times);
        evidence.host_stalls = host_stalls(line_times, settings::LEASE);
        evidence.read_rows(&dir.join("jobs.tsv"))?;
        evidence.read_stderr(dir)?;
        Ok(evidence)
    }

    fn lines(&mut self, path: &Path) -> Result<Vec<Line>, String> {
        let (lines, bad) = ledger::read(path)?;
        self.unreadable += bad;
        Ok(lines)
    }

    fn read_producer(&mut self, path: &Path) -> Result<(), String> {
        // The jobs the current incarnation offered that have no line of their own yet.
        let mut pending: BTreeSet<u64> = BTreeSet::new();
        let mut finished = false;
        // An incarnation's jobs still without a line when it ends: cut off by its kill, or
        // left unanswered by a producer that went on to finish.
        let close = |pending: &mut BTreeSet<u64>, finished: bool, offered: &mut Offered| {
            let left = std::mem::take(pending);
            if finished {
                offered.unanswered.extend(left);
            } else {
                offered.cut_off.extend(left);
            }
        };
        for line in self.lines(path)? {
            self.line_times.push(line.t);
            let n = line.number("n");
            match line.kind.as_str() {
                "hello" => {
                    close(&mut pending, finished, &mut self.offered);
                    finished = false;
                }
                "offer" => {
                    let (Some(first), Some(last)) = (line.number("first"), line.number("last"))
                    else {
                        self.unreadable += 1;
                        continue;
                    };
                    self.offered.recorded = true;
                    self.offered.ns.extend(first..=last);
                    pending.extend(first..=last);
                }
                "enqueued" => {
                    let (Some(job), Some(n)) = (line.number("job"), n) else {
                        self.unreadable += 1;
                        continue;
                    };
                    pending.remove(&n);
                    let job = i64::try_from(job).unwrap_or(i64::MAX);
                    let promise = Promise {
                        n,
                        poison: line.number("poison") == Some(1),
                        fails: line
                            .number("fails")
                            .map_or(0, |fails| u32::try_from(fails).unwrap_or(u32::MAX)),
                    };
                    if let Some(earlier) = self.promises.insert(job, promise) {
                        self.anomalies.acknowledged_twice.push(format!(
                            "job {job}: acknowledged for n={} and again for n={n}",
                            earlier.n
                        ));
                    }
                }
                "rolled-back" => {
                    if let Some(n) = n {
                        pending.remove(&n);
                    }
                    self.rolled_back.extend(n);
                }
                "gave-up" => {
                    if let Some(n) = n {
                        pending.remove(&n);
                        self.offered.gave_up.insert(n);
                    }
                }
                "short-answer" => {
                    let field = |key: &str| line.number(key).unwrap_or(0);
                    let (first, last) = (field("first"), field("last"));
                    // Its jobs are answered, ids or not: those without one were promised
                    // nothing, which the accounting then says.
                    pending.retain(|n| !(first..=last).contains(n));
                    self.offered
                        .short_answers
                        .push((first, last, field("jobs"), field("ids")));
                }
                "finished" => finished = true,
                "pragmas" => self.pragmas.push(pragmas_of(&line)),
                _ => {}
            }
        }
        close(&mut pending, finished, &mut self.offered);
        Ok(())
    }

    fn read_faults(&mut self, path: &Path) -> Result<(), String> {
        let mut paused: BTreeMap<String, u64> = BTreeMap::new();
        let mut cut: BTreeMap<String, u64> = BTreeMap::new();
        let mut crashed = None;
        for line in self.lines(path)? {
            let worker = line.text("worker").unwrap_or_default().to_owned();
            match line.kind.as_str() {
                "kill" => {
                    let of_all = line.number("all") == Some(1);
                    if of_all {
                        let at = self.faults.kills.len();
                        if let Some(group) = self.faults.kill_alls.last_mut() {
                            group.push(at);
                        }
                    }
                    self.faults.kills.push(Kill {
                        process: worker,
                        t: line.t,
                        of_all,
                    });
                }
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
                "term" => self.faults.terms.push(Term {
                    process: worker,
                    t: line.t,
                }),
                "term-kill" => self.faults.term_kills.push(worker),
                "kill-producer" => {
                    self.faults.producer_kills += 1;
                    if let Some(ns) = line.text("ns") {
                        self.faults.producer_kills_in_tx += 1;
                        self.killed_in_tx
                            .extend(ns.split(',').filter_map(|n| n.parse::<u64>().ok()));
                    }
                }
                "kill-all" => {
                    self.faults.kill_alls.push(Vec::new());
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
                "spawn" => self.faults.spawns.push((worker, line.t)),
                "retire" => {
                    self.faults.retire = Some(line.t);
                    self.faults.retired = line
                        .text("workers")
                        .unwrap_or_default()
                        .split(',')
                        .filter(|name| !name.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "retire-kill" => self.faults.retire_kills.push(worker),
                "drain" => self.faults.drain_left = line.number("live"),
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
        self.faults.index_deaths();
        Ok(())
    }

    fn read_worker(&mut self, path: &Path) -> Result<(), String> {
        let mut open: BTreeMap<(i64, u32, String), usize> = BTreeMap::new();
        for line in self.lines(path)? {
            self.line_times.push(line.t);
            let process = line.text("worker").unwrap_or_default().to_owned();
            if line.kind == "counters" {
                let count = |key: &str| line.number(key).unwrap_or(0);
                self.counters.entry(process).or_default().push(Counters {
                    t: line.t,
                    troubled: count("lost_leases") + count("unrecorded") + count("stale"),
                    stale: count("stale"),
                    unrecorded: count("unrecorded"),
                    last: count("final") == 1,
                    retried: count("retried"),
                    released: count("released"),
                    completed: count("completed"),
                    dead: count("dead"),
                });
                continue;
            }
            if line.kind == "pragmas" {
                self.pragmas.push(pragmas_of(&line));
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
                        work_ms: line.number("work_ms"),
                    });
                }
                "done" | "failed" | "cancelled" => {
                    let end = match line.kind.as_str() {
                        "done" => End::Done(line.t),
                        "failed" => End::Failed(line.t),
                        _ => End::Cancelled(line.t),
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

    /// The rows' jobs (`n`) that no acknowledgement covers.
    pub(crate) fn unacknowledged_ns(&self) -> BTreeSet<u64> {
        self.rows
            .iter()
            .filter(|(id, _)| !self.promises.contains_key(id))
            .map(|(_, row)| row.n)
            .collect()
    }

    /// `panicked at` in any process's stderr (`w*.stderr`, `producer.stderr`). A poison
    /// job's `std::process::abort()` writes nothing there, and the workers log through
    /// `tracing`, so such a line is a panic in the library or the harness, caught or not.
    fn read_stderr(&mut self, dir: &Path) -> Result<(), String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|error| format!("{}: {error}", dir.display()))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "stderr"))
            .collect();
        files.sort();
        for path in files {
            let text =
                std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            for line in String::from_utf8_lossy(&text)
                .lines()
                .filter(|line| line.contains("panicked at"))
            {
                self.anomalies
                    .panics
                    .push(format!("{name}: {}", line.trim()));
            }
        }
        Ok(())
    }
}

fn pragmas_of(line: &Line) -> Pragmas {
    Pragmas {
        process: line.text("worker").unwrap_or("?").to_owned(),
        connections: line.number("connections").unwrap_or(0),
        synchronous: line.text("synchronous").unwrap_or_default().to_owned(),
        journal_mode: line.text("journal_mode").unwrap_or_default().to_owned(),
        error: line.text("error").map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn only_a_silence_of_every_ledger_past_a_lease_is_a_host_stall() {
        // Two workers' counters a second apart each, interleaved: no stall.
        let steady: Vec<u64> = (0..10).flat_map(|k| [k * S, k * S + S / 2]).collect();
        assert!(host_stalls(steady.clone(), settings::LEASE).is_empty());
        // Every line stops from 9.5 s to 14.5 s: one stall, from the last line to the next.
        let mut stalled = steady;
        stalled.extend([14 * S + S / 2, 15 * S]);
        let spans: Vec<(u64, u64)> = host_stalls(stalled, settings::LEASE)
            .iter()
            .map(|span| (span.from, span.to))
            .collect();
        assert_eq!(spans, vec![(9 * S + S / 2, 14 * S + S / 2)]);
    }
}
