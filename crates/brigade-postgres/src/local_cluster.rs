//! A throwaway PostgreSQL cluster, started from the machine's server binaries, for tests,
//! examples and benchmarks where no server runs.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// What to install when no server binaries are found.
const INSTALL_HINT: &str =
    "install the PostgreSQL server (Debian: apt-get install -y postgresql) or set DATABASE_URL";

/// A PostgreSQL cluster of its own, in a temporary directory, on a free port of 127.0.0.1,
/// with trust authentication for the `postgres` user. Dropping it stops the server
/// (immediate mode) and deletes the directory.
///
/// When run as root, the server runs as the `postgres` user (PostgreSQL refuses root).
///
/// # Examples
///
/// ```no_run
/// use brigade_postgres::LocalCluster;
///
/// let cluster = LocalCluster::start()?;
/// let url = cluster.url("postgres");
/// assert!(url.starts_with("postgres://postgres@127.0.0.1:"));
/// # Ok::<(), brigade_postgres::LocalClusterError>(())
/// ```
pub struct LocalCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as_postgres: bool,
}

/// Why a local cluster could not be started or controlled.
#[derive(Debug)]
pub struct LocalClusterError {
    message: String,
}

impl LocalClusterError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for LocalClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LocalClusterError {}

impl fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCluster")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .finish()
    }
}

impl LocalCluster {
    /// Creates and starts a cluster. `fsync` is off: the data survives a crash of the
    /// server process (the page cache keeps it), not of the machine.
    ///
    /// # Errors
    ///
    /// When the server binaries are missing (the message says what to install), or
    /// `initdb` / `pg_ctl` fail (the message carries their output).
    ///
    /// # Examples
    ///
    /// See [`LocalCluster`].
    pub fn start() -> Result<Self, LocalClusterError> {
        let bin = find_binaries()?;
        let run_as_postgres = is_root();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "brigade-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|error| LocalClusterError::new(format!("{}: {error}", dir.display())))?;
        let port = free_port()
            .map_err(|error| LocalClusterError::new(format!("no free port: {error}")))?;
        let cluster = LocalCluster {
            bin,
            dir,
            port,
            run_as_postgres,
        };
        if run_as_postgres {
            cluster.run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&cluster.dir),
                false,
            )?;
        }
        let data = cluster.data_dir();
        cluster.run(
            Command::new(cluster.bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
            true,
        )?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The cluster shared by this process, started on first use and stopped by a watchdog
    /// when the process exits (statics are never dropped).
    ///
    /// # Errors
    ///
    /// As [`LocalCluster::start`]; the first error is returned to every caller.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let cluster = brigade_postgres::LocalCluster::shared()?;
    /// println!("PostgreSQL on port {}", cluster.port());
    /// # Ok::<(), brigade_postgres::LocalClusterError>(())
    /// ```
    pub fn shared() -> Result<&'static LocalCluster, LocalClusterError> {
        static SHARED: OnceLock<Result<LocalCluster, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| {
            let cluster = LocalCluster::start().map_err(|error| error.message)?;
            cluster.stop_when_process_exits();
            Ok(cluster)
        });
        shared
            .as_ref()
            .map_err(|message| LocalClusterError::new(message.clone()))
    }

    /// The server's port on 127.0.0.1.
    ///
    /// # Examples
    ///
    /// See [`LocalCluster::shared`].
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` as the `postgres` user.
    ///
    /// # Examples
    ///
    /// See [`LocalCluster`].
    #[must_use]
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Kills the server the way a crash would (`pg_ctl stop -m immediate`): no checkpoint,
    /// recovery from the WAL at the next start.
    ///
    /// # Errors
    ///
    /// When `pg_ctl` fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let cluster = brigade_postgres::LocalCluster::start()?;
    /// cluster.crash()?;
    /// cluster.start_server()?; // recovers, same port, same data
    /// # Ok::<(), brigade_postgres::LocalClusterError>(())
    /// ```
    pub fn crash(&self) -> Result<(), LocalClusterError> {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"])
    }

    /// Starts the server again after [`LocalCluster::crash`], waiting until it accepts
    /// connections.
    ///
    /// # Errors
    ///
    /// When `pg_ctl` fails (the message carries the server log's tail).
    ///
    /// # Examples
    ///
    /// See [`LocalCluster::crash`].
    pub fn start_server(&self) -> Result<(), LocalClusterError> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=300 -c shared_buffers=128MB",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let started = self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &log.display().to_string(),
            "-o",
            &options,
        ]);
        started.map_err(|error| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            LocalClusterError::new(format!(
                "{error}\nserver log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ))
        })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), LocalClusterError> {
        let mut command = Command::new(self.bin.join("pg_ctl"));
        command.arg("-D").arg(self.data_dir()).args(args);
        self.run(&mut command, true)
    }

    fn run(&self, command: &mut Command, as_postgres: bool) -> Result<(), LocalClusterError> {
        let mut command = if as_postgres && self.run_as_postgres {
            let mut wrapped = Command::new("runuser");
            wrapped
                .args(["-u", "postgres", "--"])
                .arg(command.get_program())
                .args(command.get_args());
            wrapped
        } else {
            std::mem::replace(command, Command::new(""))
        };
        let output = command.stdin(Stdio::null()).output().map_err(|error| {
            LocalClusterError::new(format!("{:?}: {error}", command.get_program()))
        })?;
        if output.status.success() {
            return Ok(());
        }
        Err(LocalClusterError::new(format!(
            "{:?} failed ({}): {}{}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }

    /// A detached shell that waits for this process to end, then stops the server and
    /// deletes the directory.
    fn stop_when_process_exits(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = format!(
            "{}{} -D {} stop -m immediate",
            if self.run_as_postgres {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl.display(),
            self.data_dir().display()
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        let spawned = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(error) = spawned {
            eprintln!(
                "brigade-postgres: no watchdog for the local cluster in {}: {error}",
                self.dir.display()
            );
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/*/bin`,
/// else `PATH`.
fn find_binaries() -> Result<PathBuf, LocalClusterError> {
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
            LocalClusterError::new(format!(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}"
            ))
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The URL of a fresh, empty database: on the server of `DATABASE_URL` when it is set,
/// else on this process's [`LocalCluster::shared`]. Databases left by processes that
/// have exited are dropped first.
///
/// # Errors
///
/// When neither a server nor the binaries to start one are there (the message says what
/// to install), or the server refuses to create the database.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let url = brigade_postgres::fresh_database().await?;
/// let store = brigade_postgres::PgStore::connect(&url).await?;
/// # Ok(())
/// # }
/// ```
pub async fn fresh_database() -> Result<String, LocalClusterError> {
    use sqlx::Connection;

    let server = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let cluster = tokio::task::spawn_blocking(LocalCluster::shared)
                .await
                .map_err(|error| LocalClusterError::new(error.to_string()))??;
            cluster.url("postgres")
        }
    };
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .map_err(|error| {
            LocalClusterError::new(format!(
                "cannot reach PostgreSQL at {server}: {error} ({INSTALL_HINT})"
            ))
        })?;
    drop_abandoned(&mut conn).await;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "brigade_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.subsec_nanos())
            .unwrap_or(0)
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|error| LocalClusterError::new(format!("CREATE DATABASE {name}: {error}")))?;
    let _ = conn.close().await;
    Ok(with_database(&server, &name))
}

/// Drops the test databases of processes that no longer run.
async fn drop_abandoned(conn: &mut sqlx::PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'brigade\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        let pid = name
            .split('_')
            .nth(2)
            .and_then(|pid| pid.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *conn)
                .await;
        }
    }
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |at| authority_start + at);
    let mut result = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://u@h:5/old?sslmode=disable", "new"),
            "postgres://u@h:5/new?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "new"), "postgres://u@h/new");
        assert_eq!(
            with_database("postgresql:///old", "new"),
            "postgresql:///new"
        );
    }
}
