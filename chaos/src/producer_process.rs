//! The producer process as the orchestrator sees it: started on its host, killed by the
//! faults that kill it, and restarted to continue where its ledger ends.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ledger::Line;
use crate::netns::Network;

/// Everything needed to start the producer again.
#[derive(Debug)]
pub(crate) struct ProducerSpec {
    pub(crate) exe: PathBuf,
    pub(crate) url: String,
    pub(crate) dir: PathBuf,
    pub(crate) jobs: u64,
    pub(crate) poison: u32,
    pub(crate) always_failing: u32,
    pub(crate) seed: u64,
    /// See `--hold-ms`: zero but where the producer is killed inside its transactions.
    pub(crate) hold_ms: u64,
    /// See `--long-every-ms`: zero but where links go down.
    pub(crate) long_every_ms: u64,
    /// The jobs are spread until then.
    pub(crate) until: Instant,
}

/// The running producer, killed if still running when dropped.
#[derive(Debug)]
pub(crate) struct ProducerProcess {
    spec: ProducerSpec,
    network: Arc<Network>,
    child: Child,
    run: u32,
}

impl ProducerProcess {
    pub(crate) fn start(spec: ProducerSpec, network: Arc<Network>) -> Result<Self, String> {
        let child = spawn(&spec, &network, false)?;
        Ok(Self {
            spec,
            network,
            child,
            run: 1,
        })
    }

    /// The producer's ledger.
    pub(crate) fn ledger(&self) -> PathBuf {
        self.spec.dir.join("producer.log")
    }

    /// `Some` once it has ended.
    pub(crate) fn try_wait(&mut self) -> Result<Option<ExitStatus>, String> {
        self.child
            .try_wait()
            .map_err(|error| format!("producer: {error}"))
    }

    /// SIGKILL, if it is running; `false` if it had already ended.
    pub(crate) fn kill(&mut self) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        true
    }

    /// Starts the next incarnation, which continues after its ledger's last job.
    pub(crate) fn restart(&mut self) -> Result<(), String> {
        self.run += 1;
        self.child = spawn(&self.spec, &self.network, true)?;
        Ok(())
    }

    /// Asks the producer for a transaction now (SIGUSR1), once it is ready for the signal
    /// (its `hello` line is written); `false` if it is not running or not ready.
    pub(crate) fn ask_for_transaction(&mut self) -> bool {
        self.ask("USR1")
    }

    /// Asks the producer for a job past the workers' grace now and a burst after it
    /// (SIGUSR2), as [`ProducerProcess::ask_for_transaction`].
    pub(crate) fn ask_for_job_past_grace(&mut self) -> bool {
        self.ask("USR2")
    }

    /// Asks the producer for a job past the workers' grace now, alone (SIGHUP), as
    /// [`ProducerProcess::ask_for_transaction`].
    pub(crate) fn ask_for_long_run(&mut self) -> bool {
        self.ask("HUP")
    }

    fn ask(&mut self, signal: &str) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        let pid = self.child.id();
        let ready = crate::ledger::read(&self.ledger()).is_ok_and(|(lines, _)| {
            lines
                .iter()
                .any(|line| line.kind == "hello" && line.number("pid") == Some(u64::from(pid)))
        });
        if ready {
            crate::fleet::send(pid, signal);
        }
        ready
    }

    /// `producer#K`, for the faults ledger.
    pub(crate) fn name(&self) -> String {
        format!("producer#{}", self.run)
    }
}

impl Drop for ProducerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(spec: &ProducerSpec, network: &Network, resume: bool) -> Result<Child, String> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.dir.join("producer.stderr"))
        .map_err(|error| format!("producer.stderr: {error}"))?;
    // Spread over what is left of the schedule, so every fault meets a queue with work in it.
    let seconds = spec
        .until
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    let mut command = network.command_on("producer", &spec.exe.display().to_string());
    command
        .args(["producer", "--url", &spec.url])
        .args(["--jobs", &spec.jobs.to_string()])
        .args(["--poison", &spec.poison.to_string()])
        .args(["--always-failing", &spec.always_failing.to_string()])
        .args(["--seconds", &format!("{:.1}", seconds.as_secs_f64())])
        .args(["--seed", &spec.seed.to_string()])
        .args(["--hold-ms", &spec.hold_ms.to_string()])
        .args(["--long-every-ms", &spec.long_every_ms.to_string()])
        .arg("--ledger")
        .arg(spec.dir.join("producer.log"))
        .current_dir(&spec.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if resume {
        command.arg("--resume");
    }
    command
        .spawn()
        .map_err(|error| format!("cannot start the producer: {error}"))
}

/// The last line of the ledger at `path`, reading only its tail.
pub(crate) fn last_line(path: &Path) -> Option<Line> {
    let mut file = std::fs::File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(4096)))
        .ok()?;
    let mut tail = String::new();
    file.read_to_string(&mut tail).ok()?;
    tail.lines().rev().find_map(Line::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_line() {
        let dir = std::env::temp_dir().join(format!("brigade-chaos-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("p.log");
        let writer = crate::ledger::LedgerWriter::open(&path).expect("open");
        for n in 0..500 {
            writer.record("enqueued", &[("n", n.to_string())]);
        }
        writer.record(
            "tx-hold",
            &[("first", "500".into()), ("last", "510".into())],
        );
        let line = last_line(&path).expect("a line");
        assert_eq!(
            (line.kind.as_str(), line.number("last")),
            ("tx-hold", Some(510))
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
