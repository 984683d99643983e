//! The faults: a seeded schedule, and how each one is done to the running system.
//!
//! Faults happen one at a time, each after a random pause, so that every effect the
//! checker sees has one cause; after a kill the next fault also waits out the redelivery
//! bound, so the redelivery timed is the kill's alone (a database crash in that window
//! would hold it up, as it should). Each is written to the faults ledger when it begins and
//! ends; the checker explains duplicate runs with these lines.
//!
//! | fault | how | the system must |
//! | --- | --- | --- |
//! | kill | SIGKILL to a worker holding at least one run | redeliver its jobs within lease + 2 sweeps + a store call |
//! | pause | SIGSTOP for lease + 1 s, then SIGCONT | refuse the zombie's late acks |
//! | link down | the worker's veth down for lease + 1 s, then up | self-fence, rejoin with no action |
//! | db crash | `pg_ctl stop -m immediate` or `redis-server` SIGKILL, ~1 s, start | workers reconnect with no action |
//! | kill all | SIGKILL to every worker and the producer at once (SQLite) | restart from the file; redeliver |
//! | producer in tx | SIGKILL to the producer inside its own transaction (SQLite) | none of its jobs appear |
//!
//! Which kinds a run plays depends on its store ([`kinds`]). Poison jobs come from the
//! producer; the supervisor restarts the workers they abort, and a fault that kills the
//! producer restarts it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::ledger::{self, LedgerWriter};
use crate::netns::Network;
use crate::producer_process::{self, ProducerProcess};
use crate::server::Server;
use crate::settings;
use crate::store_kind::StoreKind;

/// How long a worker is paused or cut off: past its lease, so that its jobs go to others.
fn outage() -> Duration {
    settings::LEASE + Duration::from_secs(1)
}

/// How long the database stays down after its crash.
const DB_DOWN: Duration = Duration::from_secs(1);
/// How long a worker fault waits for its target to hold a run before it strikes anyway.
const WAIT_FOR_RUN: Duration = Duration::from_secs(3);
/// How long a kill of the producer waits for it to hold a transaction open (it is asked
/// for one with SIGUSR1, and opens it once its current batch is in).
const WAIT_FOR_TRANSACTION: Duration = Duration::from_secs(10);
/// How long a killed producer stays dead.
const PRODUCER_RESTART_AFTER: Duration = Duration::from_millis(300);

/// What is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Kill,
    Pause,
    LinkDown,
    DbCrash,
    KillAll,
    ProducerInTx,
}

impl FaultKind {
    /// About how long the fault takes, for pacing the producer.
    fn takes(self) -> Duration {
        // Worker faults first wait up to a few seconds for their target to hold a run.
        match self {
            FaultKind::Kill | FaultKind::KillAll => {
                Duration::from_millis(1500) + settings::redelivery_bound()
            }
            FaultKind::ProducerInTx => Duration::from_secs(3),
            FaultKind::Pause | FaultKind::LinkDown => outage() + Duration::from_millis(500),
            FaultKind::DbCrash => DB_DOWN + Duration::from_millis(1500),
        }
    }
}

/// One scheduled fault.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fault {
    pub(crate) kind: FaultKind,
    /// Which worker (0-based); unused by a database crash.
    pub(crate) worker: usize,
    /// The quiet time before it.
    pub(crate) gap: Duration,
}

/// The kinds of fault a run on `store` plays: a server crash where there is a server, a
/// link down where hosts are namespaces, and for SQLite (one host, one file) the kill of
/// every process and of the producer inside its transaction instead.
pub(crate) fn kinds(store: StoreKind, links: bool) -> Vec<FaultKind> {
    let mut kinds = vec![FaultKind::Kill, FaultKind::Pause];
    if store.has_server() {
        kinds.push(FaultKind::DbCrash);
    } else {
        kinds.extend([FaultKind::KillAll, FaultKind::ProducerInTx]);
    }
    if links {
        kinds.push(FaultKind::LinkDown);
    }
    kinds
}

/// `cycles` faults of each of `kinds` in a seeded random order.
pub(crate) fn schedule(
    rng: &mut fastrand::Rng,
    cycles: u32,
    workers: usize,
    kinds: &[FaultKind],
) -> Vec<Fault> {
    let mut faults: Vec<Fault> = kinds
        .iter()
        .flat_map(|&kind| (0..cycles).map(move |_| kind))
        .map(|kind| Fault {
            kind,
            worker: 0,
            gap: Duration::ZERO,
        })
        .collect();
    rng.shuffle(&mut faults);
    for fault in &mut faults {
        fault.worker = rng.usize(0..workers);
        fault.gap = Duration::from_millis(rng.u64(500..=2000));
    }
    faults
}

/// About how long `faults` take, quiet times included.
pub(crate) fn duration(faults: &[Fault]) -> Duration {
    faults
        .iter()
        .map(|fault| fault.gap + fault.kind.takes())
        .sum()
}

/// Everything a fault acts on.
#[derive(Debug)]
pub(crate) struct Targets<'a> {
    pub(crate) fleet: &'a Mutex<Fleet>,
    pub(crate) producer: &'a Mutex<ProducerProcess>,
    pub(crate) server: &'a Server,
    pub(crate) network: &'a Network,
    pub(crate) ledger: &'a LedgerWriter,
}

/// Does `fault`, returning a line for the progress output.
pub(crate) async fn inject(fault: Fault, targets: &Targets<'_>) -> Result<String, String> {
    let at = fault.worker;
    match fault.kind {
        FaultKind::Kill => {
            let held = wait_for_a_run(targets, at).await;
            let mut fleet = lock(targets.fleet);
            let name = fleet.process(at);
            if !fleet.is_alive(at) {
                return Ok(format!("kill {name}: skipped, it is down"));
            }
            fleet.kill(at, held);
            Ok(format!("kill -9 {name} holding {held} run(s)"))
        }
        FaultKind::Pause => {
            let held = wait_for_a_run(targets, at).await;
            let name = {
                let fleet = lock(targets.fleet);
                let name = fleet.process(at);
                targets.ledger.record("stop", &[("worker", name.clone())]);
                fleet.signal(at, "STOP");
                name
            };
            tokio::time::sleep(outage()).await;
            lock(targets.fleet).signal(at, "CONT");
            targets.ledger.record("cont", &[("worker", name.clone())]);
            Ok(format!(
                "SIGSTOP {name} holding {held} run(s) for {:?}, SIGCONT",
                outage()
            ))
        }
        FaultKind::LinkDown => {
            let held = wait_for_a_run(targets, at).await;
            let (name, host) = {
                let fleet = lock(targets.fleet);
                (fleet.process(at), fleet.host(at))
            };
            targets
                .ledger
                .record("link-down", &[("worker", name.clone())]);
            targets.network.set_link(&host, false)?;
            tokio::time::sleep(outage()).await;
            let up = targets.network.set_link(&host, true);
            // The incarnation may have changed (a poison job) while the link was down; the
            // link belongs to the host, so every incarnation in between was cut off.
            let now = lock(targets.fleet).process(at);
            targets
                .ledger
                .record("link-up", &[("worker", name.clone()), ("now", now)]);
            up?;
            Ok(format!(
                "link of {host} ({name}) holding {held} run(s) down for {:?}, up",
                outage()
            ))
        }
        FaultKind::DbCrash => {
            targets.ledger.record("db-crash", &[]);
            let crashed = tokio::task::block_in_place(|| targets.server.crash());
            tokio::time::sleep(DB_DOWN).await;
            let started = tokio::task::block_in_place(|| targets.server.start());
            targets.ledger.record("db-up", &[]);
            crashed.map_err(|error| format!("db crash: {error}"))?;
            started.map_err(|error| format!("db restart: {error}"))?;
            Ok(targets.server.crash_name().to_owned())
        }
        FaultKind::KillAll => {
            let held = wait_for_a_run(targets, at).await;
            let mut killed = Vec::new();
            {
                let mut fleet = lock(targets.fleet);
                let alive = (0..fleet.count()).filter(|&w| fleet.is_alive(w)).count();
                targets
                    .ledger
                    .record("kill-all", &[("workers", alive.to_string())]);
                for worker in 0..fleet.count() {
                    if fleet.is_alive(worker) {
                        let held = open_runs_of(&fleet, worker);
                        killed.push(fleet.process(worker));
                        fleet.kill(worker, held);
                    }
                }
            }
            let producer = kill_producer(targets, None).await?;
            Ok(format!(
                "kill -9 every process: {} ({} holding {held} run(s)), {producer}",
                killed.join(" "),
                lock(targets.fleet).process(at)
            ))
        }
        FaultKind::ProducerInTx => {
            let deadline = Instant::now() + WAIT_FOR_TRANSACTION;
            let ledger_path = lock(targets.producer).ledger();
            let mut holding = None;
            let mut asked = false;
            while Instant::now() < deadline {
                if !asked {
                    asked = lock(targets.producer).ask_for_transaction();
                }
                // Only a line written after this producer's `hello`: a `tx-hold` left last by
                // an incarnation killed inside its transaction is not this one's.
                holding = producer_process::last_line(&ledger_path)
                    .filter(|line| asked && line.kind == "tx-hold");
                if holding.is_some() || !producer_running(targets) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            kill_producer(targets, holding).await
        }
    }
}

/// Kills the producer (inside the transaction its ledger's `holding` line opened, if
/// given) and starts it again.
async fn kill_producer(
    targets: &Targets<'_>,
    holding: Option<ledger::Line>,
) -> Result<String, String> {
    let (name, killed, ledger_path) = {
        let mut producer = lock(targets.producer);
        let name = producer.name();
        let killed_at = ledger::now_micros();
        let killed = producer.kill();
        (name, killed.then_some(killed_at), producer.ledger())
    };
    let Some(_) = killed else {
        return Ok("producer: not killed, it had finished".to_owned());
    };
    // Inside the transaction only if nothing followed the `tx-hold` line: the producer
    // writes `tx-end` before it sends the commit.
    let inside = holding
        .filter(|held| producer_process::last_line(&ledger_path).is_some_and(|last| last == *held));
    let mut fields = vec![("worker", name.clone())];
    if let Some(held) = &inside {
        fields.push(("first", held.number("first").unwrap_or(0).to_string()));
        fields.push(("last", held.number("last").unwrap_or(0).to_string()));
        fields.push(("ns", held.text("ns").unwrap_or_default().to_owned()));
    }
    targets.ledger.record("kill-producer", &fields);
    tokio::time::sleep(PRODUCER_RESTART_AFTER).await;
    lock(targets.producer).restart()?;
    Ok(match inside {
        Some(held) => format!(
            "kill -9 {name} inside its transaction of jobs n={}..{}, restarted",
            held.number("first").unwrap_or(0),
            held.number("last").unwrap_or(0)
        ),
        None => format!("kill -9 {name} (not inside a transaction), restarted"),
    })
}

fn producer_running(targets: &Targets<'_>) -> bool {
    matches!(lock(targets.producer).try_wait(), Ok(None))
}

/// Waits (a bounded time) until worker `at` holds a run, so that the fault interrupts work;
/// returns how many it holds.
async fn wait_for_a_run(targets: &Targets<'_>, at: usize) -> usize {
    let deadline = Instant::now() + WAIT_FOR_RUN;
    let mut held = open_runs(targets, at);
    while held == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        held = open_runs(targets, at);
    }
    held
}

/// Runs the current incarnation of worker `at` has started and not ended, by its ledger.
fn open_runs(targets: &Targets<'_>, at: usize) -> usize {
    open_runs_of(&lock(targets.fleet), at)
}

fn open_runs_of(fleet: &Fleet, at: usize) -> usize {
    let (path, name) = (fleet.ledger_path(at), fleet.process(at));
    let Ok((lines, _)) = ledger::read(&path) else {
        return 0;
    };
    let mut open = std::collections::BTreeSet::new();
    for line in lines
        .iter()
        .filter(|line| line.text("worker") == Some(name.as_str()))
    {
        let Some(key) = line.number("job").zip(line.number("attempt")) else {
            continue;
        };
        match line.kind.as_str() {
            "start" => {
                open.insert(key);
            }
            "done" | "cancelled" => {
                open.remove(&key);
            }
            _ => {}
        }
    }
    open.len()
}

/// The fleet or the producer, even if a thread panicked while holding it (its state is
/// still usable: the worst case is a process the supervisor notices one tick late).
pub(crate) fn lock<T>(fleet: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    fleet
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_its_schedule() {
        let all = kinds(StoreKind::Postgres, true);
        let one = schedule(&mut fastrand::Rng::with_seed(9), 3, 4, &all);
        let two = schedule(&mut fastrand::Rng::with_seed(9), 3, 4, &all);
        assert_eq!(one.len(), 12);
        assert!(
            one.iter()
                .zip(&two)
                .all(|(a, b)| a.kind == b.kind && a.worker == b.worker && a.gap == b.gap)
        );
        assert!(
            schedule(
                &mut fastrand::Rng::with_seed(9),
                3,
                4,
                &kinds(StoreKind::Redis, false)
            )
            .iter()
            .all(|f| f.kind != FaultKind::LinkDown)
        );
        let sqlite = kinds(StoreKind::Sqlite, false);
        assert!(sqlite.contains(&FaultKind::KillAll) && !sqlite.contains(&FaultKind::DbCrash));
    }
}
