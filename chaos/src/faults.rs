//! The faults: a seeded schedule, and how each one is done to the running system.
//!
//! Faults happen one at a time, each after a random pause, so that every effect the
//! checker sees has one cause; after a kill the next fault also waits out the redelivery
//! bound, so the redelivery timed is the kill's alone (a database crash in that window
//! would hold it up, as it should). Each is written to the faults ledger when it begins and
//! ends, with the runs it caught (`held=`); the checker explains duplicate runs with these
//! lines, and counts from the ledgers which faults hit work.
//!
//! | fault | how | the system must |
//! | --- | --- | --- |
//! | kill | SIGKILL to a worker holding a run with work left | redeliver its jobs within lease + 2 sweeps + a store call |
//! | pause | SIGSTOP for lease + 1 s, then SIGCONT, to a worker holding a run with work left, one that succeeds this attempt when there is one | refuse the zombie's late acks |
//! | link down | the veth of a worker holding a run whose work outlasts the lease, down for lease + 1 s, then up | self-fence before the lease ends, rejoin with no action |
//! | db crash | while runs are going: `pg_ctl stop -m immediate` or `redis-server` SIGKILL, ~1 s, start | workers reconnect with no action |
//! | graceful restart | SIGTERM to a worker holding a run past its grace (the producer is asked for one first), then restarted | give back what it holds; start each stopped run's job again within lease + 2 sweeps + a store call |
//! | kill all | SIGKILL to every worker and the producer at once (SQLite) | restart from the file; redeliver |
//! | producer in tx | SIGKILL to the producer inside its own transaction (SQLite) | none of its jobs appear |
//!
//! A worker fault aims at work: it asks the producer for a job of a few seconds, then waits
//! (a bounded time) for a worker whose ledger shows a run with work left, asking the
//! scheduled worker first and then the others, and strikes the scheduled worker anyway
//! when none turns up. A link down waits longer, for a run that only the worker's fence can
//! stop before its lease runs out.
//!
//! Which kinds a run plays depends on its store ([`kinds`]). Poison jobs come from the
//! producer; the supervisor restarts the workers they abort, and a fault that kills the
//! producer restarts it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::ledger::{self, LedgerWriter};
use crate::netns::Network;
use crate::open_runs::OpenRun;
use crate::producer_process::{self, ProducerProcess};
use crate::server::Server;
use crate::settings;
use crate::store_kind::StoreKind;

/// How long a worker is paused or cut off: past its lease, so that its jobs go to others.
fn outage() -> Duration {
    settings::LEASE + Duration::from_secs(1)
}

/// How long before the SIGCONT a paused run's work must end: the SIGSTOP follows the look
/// at the ledger by a few milliseconds, more on a busy machine.
const ENDS_BEFORE_CONT: Duration = Duration::from_secs(1);

/// How long the database stays down after its crash.
const DB_DOWN: Duration = Duration::from_secs(1);
/// How long a fault waits for a run with work left before it strikes anyway.
const WAIT_FOR_RUN: Duration = Duration::from_secs(3);
/// How long a link down waits for a run whose work outlasts the lease: where links go
/// down, the producer sends such a job about every 4 s, so about two start within it.
const WAIT_FOR_LONG_RUN: Duration = Duration::from_secs(8);
/// How much longer a fault that found no run with work left waits for any run at all.
const ANY_RUN_WAIT: Duration = Duration::from_secs(2);
/// The work a run must have left for a kill, a pause or a crash to land while it runs, not
/// after it ended: the fault follows the look at the ledger by a few milliseconds, more on
/// a busy machine.
const STILL_RUNNING_FOR: Duration = Duration::from_millis(300);
/// How far past the lease a run's work must go for a link down to aim at it: the cut
/// follows the look at the ledger by a few milliseconds, and the checker holds only runs
/// whose work would outlast the cut by a full lease to their fence.
const OUTLASTS_LEASE_BY: Duration = Duration::from_millis(500);
/// How long a kill of the producer waits for it to hold a transaction open (it is asked
/// for one with SIGUSR1, and opens it once its current batch is in).
const WAIT_FOR_TRANSACTION: Duration = Duration::from_secs(10);
/// How far past the workers' grace a run's work must go for a graceful restart to aim at
/// it: the SIGTERM follows the look at the ledger by a few milliseconds, and the run must
/// still be going when the grace ends, so that the shutdown stops it.
const PAST_GRACE_BY: Duration = Duration::from_millis(500);
/// How long a graceful restart waits for its target to watch SIGTERM (its `hello` line): a
/// worker just restarted after a poison job's abort may not yet.
const WAIT_FOR_READY: Duration = Duration::from_secs(5);
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
    GracefulRestart,
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
            FaultKind::Pause => outage() + Duration::from_millis(1000),
            FaultKind::LinkDown => outage() + Duration::from_millis(3000),
            FaultKind::DbCrash => DB_DOWN + Duration::from_millis(2000),
            FaultKind::GracefulRestart => {
                Duration::from_millis(1500) + settings::GRACE + settings::redelivery_bound()
            }
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

/// The kinds of fault a run on `store` plays: kill -9, pause and graceful restart
/// everywhere, a server crash where there is a server, a link down where hosts are
/// namespaces, and for SQLite (one host, one file) the kill of every process and of the
/// producer inside its transaction instead.
pub(crate) fn kinds(store: StoreKind, links: bool) -> Vec<FaultKind> {
    let mut kinds = vec![
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::GracefulRestart,
    ];
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
    match fault.kind {
        FaultKind::Kill => {
            let aim = aim(targets, fault.worker, ANY_RUN).await;
            let mut fleet = lock(targets.fleet);
            let name = fleet.process(aim.at);
            if !fleet.is_alive(aim.at) {
                return Ok(format!("kill {name}: skipped, it is down"));
            }
            fleet.kill(aim.at, aim.held, false);
            Ok(format!("kill -9 {name} holding {} run(s)", aim.held))
        }
        FaultKind::Pause => {
            let aim = aim(targets, fault.worker, SUCCEEDING_RUN).await;
            let name = {
                let fleet = lock(targets.fleet);
                let name = fleet.process(aim.at);
                // Written once the signal is in: a run whose `start` comes before this line
                // started before the process stopped, and none starts after it until SIGCONT.
                fleet.signal(aim.at, "STOP");
                targets.ledger.record(
                    "stop",
                    &[("worker", name.clone()), ("held", aim.held.to_string())],
                );
                name
            };
            tokio::time::sleep(outage()).await;
            lock(targets.fleet).signal(aim.at, "CONT");
            targets.ledger.record("cont", &[("worker", name.clone())]);
            Ok(format!(
                "SIGSTOP {name} holding {} run(s) for {:?}, SIGCONT",
                aim.held,
                outage()
            ))
        }
        FaultKind::LinkDown => {
            let aim = aim(targets, fault.worker, RUN_PAST_LEASE).await;
            let (name, host) = {
                let fleet = lock(targets.fleet);
                (fleet.process(aim.at), fleet.host(aim.at))
            };
            targets.ledger.record(
                "link-down",
                &[
                    ("worker", name.clone()),
                    ("held", aim.held.to_string()),
                    ("long", aim.long.to_string()),
                ],
            );
            targets.network.set_link(&host, false)?;
            tokio::time::sleep(outage()).await;
            let up = targets.network.set_link(&host, true);
            // The incarnation may have changed (a poison job) while the link was down; the
            // link belongs to the host, so every incarnation in between was cut off.
            let now = lock(targets.fleet).process(aim.at);
            targets
                .ledger
                .record("link-up", &[("worker", name.clone()), ("now", now)]);
            up?;
            Ok(format!(
                "link of {host} ({name}) holding {} run(s), {} past the lease, down for {:?}, up",
                aim.held,
                aim.long,
                outage()
            ))
        }
        FaultKind::DbCrash => {
            // Any worker's run will do: a crash hits every host.
            aim(targets, fault.worker, ANY_RUN).await;
            let held = {
                let mut fleet = lock(targets.fleet);
                (0..fleet.count())
                    .map(|at| fleet.open_runs(at).len())
                    .sum::<usize>()
            };
            targets
                .ledger
                .record("db-crash", &[("held", held.to_string())]);
            let crashed = tokio::task::block_in_place(|| targets.server.crash());
            tokio::time::sleep(DB_DOWN).await;
            let started = tokio::task::block_in_place(|| targets.server.start());
            targets.ledger.record("db-up", &[]);
            crashed.map_err(|error| format!("db crash: {error}"))?;
            started.map_err(|error| format!("db restart: {error}"))?;
            Ok(format!(
                "{} with {held} run(s) going",
                targets.server.crash_name()
            ))
        }
        FaultKind::KillAll => {
            aim(targets, fault.worker, ANY_RUN).await;
            let mut killed = Vec::new();
            let mut held_total = 0;
            {
                let mut fleet = lock(targets.fleet);
                let alive = (0..fleet.count()).filter(|&w| fleet.is_alive(w)).count();
                targets
                    .ledger
                    .record("kill-all", &[("workers", alive.to_string())]);
                for worker in 0..fleet.count() {
                    if fleet.is_alive(worker) {
                        let held = fleet.open_runs(worker).len();
                        held_total += held;
                        killed.push(fleet.process(worker));
                        fleet.kill(worker, held, true);
                    }
                }
            }
            let producer = kill_producer(targets, None).await?;
            Ok(format!(
                "kill -9 every process: {} (holding {held_total} run(s)), {producer}",
                killed.join(" "),
            ))
        }
        FaultKind::GracefulRestart => graceful_restart(fault, targets).await,
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

/// SIGTERM to a worker holding a run that outlasts its grace, the producer asked for such a
/// run first; waits for the worker to exit (the supervisor restarts it), and kills it if it
/// does not within [`settings::exit_patience`].
async fn graceful_restart(fault: Fault, targets: &Targets<'_>) -> Result<String, String> {
    let aim = aim(targets, fault.worker, RUN_PAST_GRACE).await;
    let ready_by = Instant::now() + WAIT_FOR_READY;
    while !lock(targets.fleet).is_ready(aim.at) && Instant::now() < ready_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grace = micros(settings::GRACE);
    let (name, held, past_grace) = {
        let mut fleet = lock(targets.fleet);
        let name = fleet.process(aim.at);
        if !fleet.is_ready(aim.at) {
            return Ok(format!(
                "graceful restart of {name}: skipped, it does not watch SIGTERM yet"
            ));
        }
        let now = ledger::now_micros();
        let runs = fleet.open_runs(aim.at);
        let past_grace = runs.iter().filter(|run| run.left_at(now) > grace).count();
        fleet.terminate(aim.at, runs.len(), past_grace);
        (name, runs.len(), past_grace)
    };
    let patience = settings::exit_patience();
    let deadline = Instant::now() + patience;
    loop {
        {
            let fleet = lock(targets.fleet);
            if !fleet.is_alive(aim.at) || fleet.process(aim.at) != name {
                break;
            }
        }
        if Instant::now() >= deadline {
            lock(targets.fleet).kill_after_term(aim.at, patience);
            return Ok(format!(
                "SIGTERM {name}: not gone after {patience:?}, killed (a MUST fails)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(format!(
        "SIGTERM {name} holding {held} run(s), {past_grace} past its {:?} grace{}; exited, restarted",
        settings::GRACE,
        if aim.asked {
            ""
        } else {
            " (no job past the grace asked for: the producer had finished)"
        }
    ))
}

/// Where a worker fault strikes, and what that worker held when it was chosen.
#[derive(Clone, Copy, Debug)]
struct Aim {
    at: usize,
    /// Its open runs.
    held: usize,
    /// Of those, runs whose work goes on past a lease from now.
    long: usize,
    /// Whether the producer was asked for a run first (it was not running, or had
    /// finished, if not).
    asked: bool,
}

/// The run a worker fault waits for before it strikes, and how it gets one going.
#[derive(Clone, Copy)]
struct Quarry {
    /// The work the run must have left.
    left: Duration,
    /// How long to wait for such a run.
    wait: Duration,
    /// Which runs will do.
    wanted: Wanted,
    /// What the producer is asked for first.
    ask: Ask,
}

/// Which runs a fault looks for first, given the time now (ledger µs): any, or (for a
/// pause) one whose job succeeds this attempt and whose work ends while its process is
/// stopped, since only such a run always sends the late ack the store must refuse.
type Wanted = fn(&OpenRun, u64) -> bool;

/// A request to the producer for a run; `false` if it was not running or had finished.
type Ask = fn(&mut ProducerProcess) -> bool;

/// A kill, a kill of every process, a database crash: any run with work left.
const ANY_RUN: Quarry = Quarry {
    left: STILL_RUNNING_FOR,
    wait: WAIT_FOR_RUN,
    wanted: any_run,
    ask: ProducerProcess::ask_for_long_run,
};

/// A pause: a run with work left that succeeds this attempt and ends while paused.
const SUCCEEDING_RUN: Quarry = Quarry {
    wanted: succeeding_run_ending_in_the_pause,
    ..ANY_RUN
};

/// A link down: a run whose work outlasts the lease, which only its fence can stop.
const RUN_PAST_LEASE: Quarry = Quarry {
    left: settings::LEASE.saturating_add(OUTLASTS_LEASE_BY),
    wait: WAIT_FOR_LONG_RUN,
    ..ANY_RUN
};

/// A graceful restart: a run past the grace, the producer asked for one with a burst
/// behind it, so that the worker also holds claims waiting at the rate limit.
const RUN_PAST_GRACE: Quarry = Quarry {
    left: settings::GRACE.saturating_add(PAST_GRACE_BY),
    wait: WAIT_FOR_LONG_RUN,
    wanted: any_run,
    ask: ProducerProcess::ask_for_job_past_grace,
};

/// Any run will do.
fn any_run(_: &OpenRun, _now: u64) -> bool {
    true
}

/// A run whose job succeeds this attempt and whose work ends at least [`ENDS_BEFORE_CONT`]
/// before the SIGCONT. On waking, the run reports the work done before it hears of its
/// fence (the job's select is biased to the work), so it sends its ack, which the store
/// must refuse if the job was claimed again meanwhile. A run with work still to go on
/// waking meets its overdue fence first and is stopped, sending nothing: with the job the
/// aim asks for (2.5–3.5 s) caught as it starts, about half the pauses did that, and a
/// quick run with all three pauses so could not test the refusal.
fn succeeding_run_ending_in_the_pause(run: &OpenRun, now: u64) -> bool {
    !run.fails && run.left_at(now) <= micros(outage().saturating_sub(ENDS_BEFORE_CONT))
}

/// Asks the producer for a run (`quarry.ask`), then waits (at most `quarry.wait`) for a
/// worker holding a `quarry.wanted` run with at least `quarry.left` of work to go, asking
/// `scheduled` first and then the others in turn. Past that, for [`ANY_RUN_WAIT`] more, a
/// worker holding any run will do; failing that, `scheduled`, holding nothing.
///
/// The flow's own jobs last 5–50 ms, about ten a second, so most of the time no worker
/// holds a run with [`STILL_RUNNING_FOR`] left, and after a kill of every process, while
/// the producer's first transactions roll back, none at all for seconds: a quick run's three
/// kills could all strike idle workers (seed 787685 on SQLite did). The asked-for job runs
/// 2.5–3.5 s, so a fault finds it going.
async fn aim(targets: &Targets<'_>, scheduled: usize, quarry: Quarry) -> Aim {
    let asked = (quarry.ask)(&mut lock(targets.producer));
    let Quarry {
        left, wait, wanted, ..
    } = quarry;
    let left = micros(left);
    let lease = micros(settings::LEASE);
    let deadline = Instant::now() + wait;
    let last_resort = deadline + ANY_RUN_WAIT;
    loop {
        {
            let mut fleet = lock(targets.fleet);
            let count = fleet.count();
            let now = ledger::now_micros();
            let mut fallback = None;
            for at in (0..count).map(|i| (scheduled + i) % count) {
                let runs = fleet.open_runs(at);
                let aim = Aim {
                    at,
                    held: runs.len(),
                    long: runs.iter().filter(|run| run.left_at(now) > lease).count(),
                    asked,
                };
                if runs
                    .iter()
                    .any(|run| run.left_at(now) >= left && wanted(run, now))
                {
                    return aim;
                }
                if fallback.is_none() && aim.held > 0 {
                    fallback = Some(aim);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                if let Some(aim) = fallback {
                    return aim;
                }
            }
            if now >= last_resort {
                return Aim {
                    at: scheduled,
                    held: 0,
                    long: 0,
                    asked,
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
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
        assert_eq!(one.len(), 15);
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
        assert!(
            [all, sqlite, kinds(StoreKind::Redis, false)]
                .iter()
                .all(|kinds| kinds.contains(&FaultKind::GracefulRestart)),
            "every store gives jobs back at a graceful stop"
        );
    }
}
