//! A throwaway `redis-server`, started from the machine's binary, for tests, examples and
//! benchmarks where no server runs.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use brigade_queue::StoreError;

use crate::RedisStore;

/// What to install when no server binary is found.
const INSTALL_HINT: &str =
    "install the Redis server (Debian: apt-get install -y redis-server) or set REDIS_URL";

/// A `redis-server` of its own, on a free port of 127.0.0.1, with its data in a temporary
/// directory: no RDB snapshots, the append-only file on with `appendfsync always`, so a
/// killed server restarted on the same directory has every acknowledged write. Dropping it
/// kills the server and deletes the directory; a watchdog does the same if the process
/// exits without dropping it.
///
/// # Examples
///
/// ```no_run
/// use brigade_redis::LocalServer;
///
/// let server = LocalServer::start()?;
/// assert!(server.url().starts_with("redis://127.0.0.1:"));
/// # Ok::<(), brigade_redis::LocalServerError>(())
/// ```
pub struct LocalServer {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
}

/// Why a local server could not be started or controlled; its message says what to do
/// (which package to install, or the server's log).
///
/// # Examples
///
/// ```no_run
/// match brigade_redis::LocalServer::start() {
///     Ok(server) => println!("Redis on {}", server.url()),
///     Err(error) => eprintln!("no local Redis: {error}"),
/// }
/// ```
#[derive(Debug)]
pub struct LocalServerError {
    message: String,
}

impl LocalServerError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for LocalServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LocalServerError {}

impl From<StoreError> for LocalServerError {
    fn from(error: StoreError) -> Self {
        LocalServerError::new(format!("{error} ({INSTALL_HINT})"))
    }
}

impl fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalServer")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl LocalServer {
    /// Starts a server and waits until it answers.
    ///
    /// # Errors
    ///
    /// When `redis-server` is missing (the message says what to install), or it does not
    /// start (the message carries its log's tail).
    ///
    /// # Examples
    ///
    /// See [`LocalServer`].
    pub fn start() -> Result<Self, LocalServerError> {
        let binary = find_binary()?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "brigade-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|error| LocalServerError::new(format!("{}: {error}", dir.display())))?;
        let port =
            free_port().map_err(|error| LocalServerError::new(format!("no free port: {error}")))?;
        let server = LocalServer {
            binary,
            dir,
            port,
            child: Mutex::new(None),
        };
        server.start_server()?;
        server.stop_when_process_exits();
        Ok(server)
    }

    /// The server shared by this process, started on first use and stopped by the
    /// watchdog when the process exits (statics are never dropped).
    ///
    /// # Errors
    ///
    /// As [`LocalServer::start`]; the first error is returned to every caller.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let server = brigade_redis::LocalServer::shared()?;
    /// println!("Redis on port {}", server.port());
    /// # Ok::<(), brigade_redis::LocalServerError>(())
    /// ```
    pub fn shared() -> Result<&'static LocalServer, LocalServerError> {
        static SHARED: OnceLock<Result<LocalServer, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| LocalServer::start().map_err(|error| error.message))
            .as_ref()
            .map_err(|message| LocalServerError::new(message.clone()))
    }

    /// The server's port on 127.0.0.1.
    ///
    /// # Examples
    ///
    /// See [`LocalServer::shared`].
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's URL.
    ///
    /// # Examples
    ///
    /// See [`LocalServer`].
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL, as a crash would: no shutdown, no final write.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let server = brigade_redis::LocalServer::start()?;
    /// server.crash()?;
    /// server.start_server()?; // replays the append-only file, same port, same data
    /// # Ok::<(), brigade_redis::LocalServerError>(())
    /// ```
    pub fn crash(&self) -> Result<(), LocalServerError> {
        let mut child = self.lock();
        if let Some(mut running) = child.take() {
            running
                .kill()
                .map_err(|error| LocalServerError::new(format!("kill redis-server: {error}")))?;
            let _ = running.wait();
        }
        Ok(())
    }

    /// Starts the server (again, after [`LocalServer::crash`]) on the same port and
    /// directory, and waits until it has loaded its data and answers `PING`.
    ///
    /// # Errors
    ///
    /// When it does not start or answer within 30 s (the message carries its log's tail).
    ///
    /// # Examples
    ///
    /// See [`LocalServer::crash`].
    pub fn start_server(&self) -> Result<(), LocalServerError> {
        let mut child = self.lock();
        if child.is_some() {
            return Ok(());
        }
        let log = self.dir.join("server.log");
        let spawned = Command::new(&self.binary)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| {
                LocalServerError::new(format!(
                    "{}: {error} ({INSTALL_HINT})",
                    self.binary.display()
                ))
            })?;
        let _ = std::fs::write(self.dir.join("server.pid"), spawned.id().to_string());
        *child = Some(spawned);
        drop(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(10).collect();
        Err(LocalServerError::new(format!(
            "redis-server on port {} did not answer within 30 s\nserver log:\n{}",
            self.port,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A detached shell that waits for this process to end, then kills the server (whose
    /// current pid is in `server.pid`) and deletes the directory.
    fn stop_when_process_exits(&self) {
        let dir = self.dir.display();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             kill -9 $(cat {dir}/server.pid) >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
        );
        let spawned = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(error) = spawned {
            eprintln!(
                "brigade-redis: no watchdog for the local server in {}: {error}",
                self.dir.display()
            );
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-server` on `PATH`, else in the usual Debian places.
fn find_binary() -> Result<PathBuf, LocalServerError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("redis-server"))
        .find(|binary| binary.exists())
        .ok_or_else(|| LocalServerError::new(format!("redis-server not found: {INSTALL_HINT}")))
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether the server on `port` answers `PING` with `PONG` (not `LOADING`).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
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

/// A store on a key prefix no other call has used: on the server of `REDIS_URL` when it is
/// set, else on this process's [`LocalServer::shared`]. Stores with different prefixes
/// share nothing, so each test gets an empty store.
///
/// # Errors
///
/// When neither a server nor the binary to start one is there (the message says what to
/// install), or the server cannot be reached.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = brigade_redis::fresh_store().await?;
/// # Ok(())
/// # }
/// ```
pub async fn fresh_store() -> Result<RedisStore, LocalServerError> {
    let url = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => tokio::task::spawn_blocking(LocalServer::shared)
            .await
            .map_err(|error| LocalServerError::new(error.to_string()))??
            .url(),
    };
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = format!(
        "brigade-test-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.subsec_nanos())
            .unwrap_or(0)
    );
    RedisStore::builder(url)
        .prefix(prefix)
        .connect()
        .await
        .map_err(|error| {
            LocalServerError::new(format!("cannot reach Redis: {error} ({INSTALL_HINT})"))
        })
}
