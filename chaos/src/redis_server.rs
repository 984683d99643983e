//! The Redis server under test, run inside the `db` host.
//!
//! `brigade_redis::LocalServer` listens on 127.0.0.1 of the caller's namespace; the harness
//! needs the server on the db host's bridge address and crashes it from outside, so it
//! starts `redis-server` itself the same way: no RDB snapshots, the append-only file on,
//! its data in a directory of its own that outlives a crash. `protected-mode no` because
//! the workers connect from other hosts with no password — on a bridge that routes nowhere.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::netns::Network;
use crate::store_kind::Fsync;

/// The port the server listens on (its own namespace, so no clash with anything else).
const NAMESPACED_PORT: u16 = 6379;
/// How long a (re)started server may take to load its append-only file.
const START_WITHIN: Duration = Duration::from_secs(60);
/// The prefix of the server's directory under the temp dir; the orchestrator's pid follows.
pub(crate) const DIR_PREFIX: &str = "brigade-chaos-redis-";

/// A server the harness started; dropping it kills it and deletes its directory.
#[derive(Debug)]
pub(crate) struct RedisServer {
    dir: PathBuf,
    address: String,
    port: u16,
    fsync: Fsync,
    namespace: Option<String>,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a server with `appendfsync fsync` on the `db` host, in a fresh directory.
    pub(crate) fn create(network: &Network, fsync: Fsync) -> Result<RedisServer, String> {
        if !Path::new("/usr/bin/redis-server").exists() && which("redis-server").is_none() {
            return Err("redis-server not found: apt-get install -y redis-server".to_owned());
        }
        crate::cluster::remove_leftover_dirs(DIR_PREFIX, |_| {});
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let port = if network.is_namespaced() {
            NAMESPACED_PORT
        } else {
            crate::cluster::free_port()?
        };
        let server = RedisServer {
            dir,
            address: network.address("db"),
            port,
            fsync,
            namespace: network.is_namespaced().then(|| "chaos-db".to_owned()),
            child: Mutex::new(None),
        };
        server.start()?;
        Ok(server)
    }

    /// `redis://ADDRESS:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}:{}", self.address, self.port)
    }

    /// Starts the server on its directory (it replays its append-only file) and waits until
    /// it answers `PING` with `PONG` rather than `LOADING`.
    pub(crate) fn start(&self) -> Result<(), String> {
        let mut child = self.lock();
        if child.is_some() {
            return Ok(());
        }
        let mut words: Vec<String> = Vec::new();
        if let Some(namespace) = &self.namespace {
            words.extend(["ip", "netns", "exec", namespace].map(str::to_owned));
        }
        words.push("redis-server".to_owned());
        let mut command = Command::new(&words[0]);
        command
            .args(&words[1..])
            .args(["--port", &self.port.to_string(), "--bind", &self.address])
            .args([
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .args([
                "--appendfsync",
                &self.fsync.to_string(),
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        *child = Some(
            command
                .spawn()
                .map_err(|error| format!("cannot start redis-server: {error}"))?,
        );
        drop(child);
        let deadline = Instant::now() + START_WITHIN;
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Err(format!(
            "redis-server at {} did not answer within {START_WITHIN:?}\nserver log:\n{}",
            self.url(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// Kills the server as a crash would: SIGKILL, no shutdown, no final flush.
    pub(crate) fn crash(&self) -> Result<(), String> {
        let Some(mut child) = self.lock().take() else {
            return Err("redis-server is not running".to_owned());
        };
        // `ip netns exec` execs the server: the child's pid is the server's.
        child
            .kill()
            .map_err(|error| format!("kill -9 redis-server: {error}"))?;
        child
            .wait()
            .map_err(|error| format!("redis-server: {error}"))?;
        Ok(())
    }

    fn ping(&self) -> bool {
        let Ok(address) = format!("{}:{}", self.address, self.port).parse() else {
            return false;
        };
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut answer = [0_u8; 7];
        stream
            .read(&mut answer)
            .is_ok_and(|read| answer[..read].starts_with(b"+PONG"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.exists())
}
