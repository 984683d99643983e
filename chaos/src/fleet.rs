//! The worker processes: started on their hosts, signalled by the faults, and restarted
//! by a supervisor whenever one dies (a kill -9, a poison job's abort).
//!
//! Each worker host `wN` keeps one ledger, `wN.log`, across its incarnations; the
//! incarnation `K` calls itself `wN#K` in every line and in its leases. Process starts and
//! ends are written to the faults ledger (`spawn`, `exit` with how the process ended), and
//! so are the graceful restarts (`term`, and `term-kill` for a worker that did not exit by
//! itself in time) and the graceful end of the run (`retire`, and `retire-kill`), so the
//! checker can hold every exit to a cause.

use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ledger::LedgerWriter;
use crate::netns::Network;
use crate::open_runs::{OpenRun, OpenRuns};

/// How long a dead worker stays dead before its next incarnation starts.
const RESTART_AFTER: Duration = Duration::from_millis(300);

/// The worker processes of a run.
#[derive(Debug)]
pub(crate) struct Fleet {
    slots: Vec<Slot>,
    exe: PathBuf,
    url: String,
    dir: PathBuf,
    network: Arc<Network>,
    faults: Arc<LedgerWriter>,
    /// Set once the run winds down: exits are then expected and nothing restarts.
    retiring: bool,
}

#[derive(Debug)]
struct Slot {
    id: u32,
    run: u32,
    child: Option<Child>,
    died_at: Option<Instant>,
    /// Its ledger, followed.
    runs: OpenRuns,
}

impl Fleet {
    /// Starts `count` workers, `w1`.., on their hosts.
    pub(crate) fn start(
        count: u32,
        exe: &Path,
        url: &str,
        dir: &Path,
        network: Arc<Network>,
        faults: Arc<LedgerWriter>,
    ) -> Result<Fleet, String> {
        let mut fleet = Fleet {
            slots: (1..=count)
                .map(|id| Slot {
                    id,
                    run: 0,
                    child: None,
                    died_at: None,
                    runs: OpenRuns::new(dir.join(format!("w{id}.log"))),
                })
                .collect(),
            exe: exe.to_owned(),
            url: url.to_owned(),
            dir: dir.to_owned(),
            network,
            faults,
            retiring: false,
        };
        for at in 0..fleet.slots.len() {
            fleet.spawn(at)?;
        }
        Ok(fleet)
    }

    /// The host name of worker `at` (0-based): `w1`...
    pub(crate) fn host(&self, at: usize) -> String {
        format!("w{}", self.slots[at].id)
    }

    /// The current incarnation of worker `at`: `w1#3`.
    pub(crate) fn process(&self, at: usize) -> String {
        format!("w{}#{}", self.slots[at].id, self.slots[at].run)
    }

    /// How many worker hosts.
    pub(crate) fn count(&self) -> usize {
        self.slots.len()
    }

    /// Whether worker `at` is running now.
    pub(crate) fn is_alive(&self, at: usize) -> bool {
        self.slots[at].child.is_some()
    }

    /// The runs the current incarnation of worker `at` has started and not ended, by its
    /// ledger; none when it is down.
    pub(crate) fn open_runs(&mut self, at: usize) -> Vec<OpenRun> {
        if !self.is_alive(at) {
            return Vec::new();
        }
        let name = self.process(at);
        self.slots[at].runs.of(&name)
    }

    /// Notes workers that ended and restarts those that have been dead long enough.
    pub(crate) fn supervise(&mut self) -> Result<(), String> {
        for at in 0..self.slots.len() {
            let name = self.process(at);
            let slot = &mut self.slots[at];
            if let Some(child) = &mut slot.child {
                if let Ok(Some(status)) = child.try_wait() {
                    self.faults
                        .record("exit", &[("worker", name), ("status", describe(status))]);
                    slot.child = None;
                    slot.died_at = Some(Instant::now());
                }
            }
            let due = slot
                .died_at
                .is_some_and(|died| died.elapsed() >= RESTART_AFTER);
            if due && !self.retiring {
                self.spawn(at)?;
            }
        }
        Ok(())
    }

    /// SIGKILL to worker `at`, written to the faults ledger once sent (with the runs it
    /// held, and whether it is one of the kills of every process at once): a run whose
    /// `start` comes before the line started before the kill, and none comes after it.
    pub(crate) fn kill(&mut self, at: usize, held: usize, of_all: bool) {
        let name = self.process(at);
        if let Some(child) = &mut self.slots[at].child {
            let _ = child.kill();
            self.faults.record(
                "kill",
                &[
                    ("worker", name),
                    ("held", held.to_string()),
                    ("all", u8::from(of_all).to_string()),
                ],
            );
        }
    }

    /// Whether the current incarnation of worker `at` is running and has written its
    /// `hello` line: it watches SIGTERM from then on.
    pub(crate) fn is_ready(&self, at: usize) -> bool {
        let Some(child) = &self.slots[at].child else {
            return false;
        };
        let pid = u64::from(child.id());
        crate::ledger::read(&self.dir.join(format!("{}.log", self.host(at)))).is_ok_and(
            |(lines, _)| {
                lines
                    .iter()
                    .rev()
                    .any(|line| line.kind == "hello" && line.number("pid") == Some(pid))
            },
        )
    }

    /// SIGTERM to worker `at`, a graceful stop, written to the faults ledger once sent
    /// (with the runs it held, and those whose work outlasts the grace): the worker gives
    /// back its claimed jobs that have not started, lets its runs finish within the grace,
    /// stops the rest and gives their jobs back, then exits with status 0. The supervisor
    /// restarts it.
    pub(crate) fn terminate(&mut self, at: usize, held: usize, past_grace: usize) {
        let name = self.process(at);
        if let Some(child) = &self.slots[at].child {
            send(child.id(), "TERM");
            self.faults.record(
                "term",
                &[
                    ("worker", name),
                    ("held", held.to_string()),
                    ("past_grace", past_grace.to_string()),
                ],
            );
        }
    }

    /// SIGKILL to worker `at` after a SIGTERM it did not exit on within `patience`, written
    /// to the faults ledger (`term-kill`): the checker fails the run on it.
    pub(crate) fn kill_after_term(&mut self, at: usize, patience: Duration) {
        let name = self.process(at);
        if let Some(child) = &mut self.slots[at].child {
            let _ = child.kill();
            self.faults.record(
                "term-kill",
                &[
                    ("worker", name),
                    ("after_ms", patience.as_millis().to_string()),
                ],
            );
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`) to worker `at`.
    pub(crate) fn signal(&self, at: usize, signal: &str) {
        if let Some(child) = &self.slots[at].child {
            send(child.id(), signal);
        }
    }

    /// Stops every worker gracefully (SIGTERM: they finish or hand back their jobs, write
    /// their final counters and exit with status 0), killing those still there after
    /// `patience`. The faults ledger gets a `retire` line first, naming the workers asked
    /// to stop, and a `retire-kill` line for each one that had to be killed.
    pub(crate) fn retire(&mut self, patience: Duration) {
        // Nothing restarts from here on; exits before the `retire` line are the run's.
        self.retiring = true;
        let _ = self.supervise();
        let alive: Vec<String> = (0..self.slots.len())
            .filter(|&at| self.is_alive(at))
            .map(|at| self.process(at))
            .collect();
        self.faults
            .record("retire", &[("workers", alive.join(","))]);
        for slot in &self.slots {
            if let Some(child) = &slot.child {
                send(child.id(), "CONT");
                send(child.id(), "TERM");
            }
        }
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline && self.slots.iter().any(|slot| slot.child.is_some()) {
            let _ = self.supervise();
            std::thread::sleep(Duration::from_millis(50));
        }
        for at in 0..self.slots.len() {
            let name = self.process(at);
            if let Some(child) = &mut self.slots[at].child {
                self.faults.record(
                    "retire-kill",
                    &[
                        ("worker", name.clone()),
                        ("after_ms", patience.as_millis().to_string()),
                    ],
                );
                let _ = child.kill();
                let status = child.wait();
                self.faults.record(
                    "exit",
                    &[
                        ("worker", name),
                        (
                            "status",
                            status.map_or_else(|_| "unknown".to_owned(), describe),
                        ),
                    ],
                );
                self.slots[at].child = None;
            }
        }
    }

    fn spawn(&mut self, at: usize) -> Result<(), String> {
        let slot = &mut self.slots[at];
        slot.run += 1;
        slot.died_at = None;
        let host = format!("w{}", slot.id);
        let log = self.dir.join(format!("{host}.stderr"));
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|error| format!("{}: {error}", log.display()))?;
        let ledger = self.dir.join(format!("{host}.log"));
        let exe = self.exe.display().to_string();
        let mut command: Command = self.network.command_on(&host, &exe);
        command
            .args([
                "worker",
                "--url",
                &self.url,
                "--id",
                &slot.id.to_string(),
                "--run",
                &slot.run.to_string(),
                "--ledger",
            ])
            .arg(&ledger)
            // An aborting worker dumps core where core dumps are on: in the run's directory,
            // never in the caller's.
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command
            .spawn()
            .map_err(|error| format!("cannot start worker {host}: {error}"))?;
        let name = format!("{host}#{}", slot.run);
        slot.runs.keep_only(&name);
        self.faults.record(
            "spawn",
            &[("worker", name), ("pid", child.id().to_string())],
        );
        slot.child = Some(child);
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(child) = &mut slot.child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `kill -SIGNAL pid`, through the `kill` program (no signal bindings needed for four
/// signals).
pub(crate) fn send(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit:{code}"),
        (None, Some(6)) => "signal:6(abort)".to_owned(),
        (None, Some(9)) => "signal:9(kill)".to_owned(),
        (None, Some(signal)) => format!("signal:{signal}"),
        (None, None) => "unknown".to_owned(),
    }
}
