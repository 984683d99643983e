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
//! | kill | SIGKILL to a worker holding at least one run | redeliver its jobs within lease + 2 sweeps |
//! | pause | SIGSTOP for lease + 1 s, then SIGCONT | refuse the zombie's late acks |
//! | link down | the worker's veth down for lease + 1 s, then up | self-fence, rejoin with no action |
//! | db crash | `pg_ctl stop -m immediate`, ~1 s, start | workers reconnect with no action |
//!
//! Poison jobs come from the producer; the supervisor restarts the workers they abort.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::fleet::Fleet;
use crate::ledger::{self, LedgerWriter};
use crate::netns::Network;
use crate::settings;

/// How long a worker is paused or cut off: past its lease, so that its jobs go to others.
fn outage() -> Duration {
    settings::LEASE + Duration::from_secs(1)
}

/// How long the database stays down after its crash.
const DB_DOWN: Duration = Duration::from_secs(1);
/// How long a worker fault waits for its target to hold a run before it strikes anyway.
const WAIT_FOR_RUN: Duration = Duration::from_secs(3);

/// What is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Kill,
    Pause,
    LinkDown,
    DbCrash,
}

impl FaultKind {
    /// About how long the fault takes, for pacing the producer.
    fn takes(self) -> Duration {
        // Worker faults first wait up to a few seconds for their target to hold a run.
        match self {
            FaultKind::Kill => Duration::from_millis(1500) + settings::redelivery_bound(),
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

/// `cycles` faults of each kind in a seeded random order; no link faults without
/// namespaces.
pub(crate) fn schedule(
    rng: &mut fastrand::Rng,
    cycles: u32,
    workers: usize,
    links: bool,
) -> Vec<Fault> {
    let mut kinds = vec![FaultKind::Kill, FaultKind::Pause, FaultKind::DbCrash];
    if links {
        kinds.push(FaultKind::LinkDown);
    }
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
    pub(crate) cluster: &'a Cluster,
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
            let crashed = tokio::task::block_in_place(|| targets.cluster.crash());
            tokio::time::sleep(DB_DOWN).await;
            let started = tokio::task::block_in_place(|| targets.cluster.start());
            targets.ledger.record("db-up", &[]);
            crashed.map_err(|error| format!("db crash: {error}"))?;
            started.map_err(|error| format!("db restart: {error}"))?;
            Ok("PostgreSQL stop -m immediate, restart".to_owned())
        }
    }
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
    let (path, name) = {
        let fleet = lock(targets.fleet);
        (fleet.ledger_path(at), fleet.process(at))
    };
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

/// The fleet, even if a thread panicked while holding it (its state is still usable: the
/// worst case is a process the supervisor notices one tick late).
pub(crate) fn lock(fleet: &Mutex<Fleet>) -> std::sync::MutexGuard<'_, Fleet> {
    fleet
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_its_schedule() {
        let one = schedule(&mut fastrand::Rng::with_seed(9), 3, 4, true);
        let two = schedule(&mut fastrand::Rng::with_seed(9), 3, 4, true);
        assert_eq!(one.len(), 12);
        assert!(
            one.iter()
                .zip(&two)
                .all(|(a, b)| a.kind == b.kind && a.worker == b.worker && a.gap == b.gap)
        );
        assert!(
            schedule(&mut fastrand::Rng::with_seed(9), 3, 4, false)
                .iter()
                .all(|f| f.kind != FaultKind::LinkDown)
        );
    }
}
