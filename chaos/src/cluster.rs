//! The PostgreSQL server under test, run inside the `db` host.
//!
//! `brigade_postgres::LocalCluster` listens on 127.0.0.1 of the caller's namespace; the
//! harness needs the server on the db host's bridge address, started and crashed from
//! outside, so it drives `initdb` and `pg_ctl` itself, the same way: the newest
//! `/usr/lib/postgresql/*/bin` (else `PATH`), run as the `postgres` user through
//! `runuser` when root, trust authentication for the bridge's subnet only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::netns::{self, Network};

/// The port the server listens on (its own namespace, so no clash with anything else).
const NAMESPACED_PORT: u16 = 5432;
/// The prefix of the cluster's directory under the temp dir; the orchestrator's pid follows.
const DIR_PREFIX: &str = "brigade-chaos-pg-";

/// A server the harness created; dropping it stops it and deletes its directory.
#[derive(Debug)]
pub(crate) struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    address: String,
    port: u16,
    as_postgres: bool,
    /// `ip netns exec chaos-db` when namespaced.
    namespace: Option<String>,
}

impl Cluster {
    /// Creates a cluster in a fresh directory and starts it on the `db` host.
    pub(crate) fn create(network: &Network) -> Result<Cluster, String> {
        let bin = find_binaries()?;
        remove_leftover_dirs(DIR_PREFIX, stop_leftover);
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let as_postgres = netns::is_root();
        let port = if network.is_namespaced() {
            NAMESPACED_PORT
        } else {
            free_port()?
        };
        let cluster = Cluster {
            bin,
            dir,
            address: network.address("db"),
            port,
            as_postgres,
            namespace: network.is_namespaced().then(|| "chaos-db".to_owned()),
        };
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir))?;
        }
        let mut initdb = cluster.command(&cluster.bin.join("initdb"));
        initdb.arg("-D").arg(cluster.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(&mut initdb)?;
        // Trust from the bridge's subnet only: the workers connect from their namespaces.
        let hba = cluster.data().join("pg_hba.conf");
        let mut rules =
            std::fs::read_to_string(&hba).map_err(|error| format!("{}: {error}", hba.display()))?;
        rules.push_str("host all all 10.77.0.0/24 trust\n");
        std::fs::write(&hba, rules).map_err(|error| format!("{}: {error}", hba.display()))?;
        cluster.start()?;
        Ok(cluster)
    }

    /// `postgres://postgres@ADDRESS:PORT/postgres`.
    pub(crate) fn url(&self) -> String {
        format!(
            "postgres://postgres@{}:{}/postgres",
            self.address, self.port
        )
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses={} -k {} -c fsync=off -c max_connections=200 -c shared_buffers=64MB",
            self.port,
            self.address,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let mut start = self.command(&self.bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(self.data())
            .args(["start", "-w", "-t", "60", "-l"])
            .arg(&log)
            .args(["-o", &options]);
        run(&mut start).map_err(|error| {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(10).collect();
            format!(
                "{error}\nserver log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
    }

    /// Kills the server as a crash would: `pg_ctl stop -m immediate` (no checkpoint; the
    /// next start recovers from the WAL).
    pub(crate) fn crash(&self) -> Result<(), String> {
        let mut stop = self.command(&self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.data())
            .args(["stop", "-m", "immediate", "-w"]);
        run(&mut stop)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `program` on the db host, as the `postgres` user when root.
    fn command(&self, program: &Path) -> Command {
        let mut words: Vec<String> = Vec::new();
        if let Some(namespace) = &self.namespace {
            words.extend(["ip", "netns", "exec", namespace].map(str::to_owned));
        }
        if self.as_postgres {
            words.extend(["runuser", "-u", "postgres", "--"].map(str::to_owned));
        }
        words.push(program.display().to_string());
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]);
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{command:?}: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// Deletes the directories `PREFIX<pid>` of earlier runs whose orchestrator is gone, after
/// `stop` has stopped what may still run on them (their servers usually died with their
/// namespaces).
pub(crate) fn remove_leftover_dirs(prefix: &str, stop: impl Fn(&Path)) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        stop(&entry.path());
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Stops a leftover cluster in `dir`.
fn stop_leftover(dir: &Path) {
    if let Ok(bin) = find_binaries() {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb`, else the `PATH`'s.
fn find_binaries() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .ok_or_else(|| {
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql"
                .to_owned()
        })
}

pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("no free port: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("no free port: {error}"))
}
