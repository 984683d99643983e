//! Opening a store: the file, how durable each commit is, how long to wait for the lock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use brigade_queue::StoreError;

/// The longest busy or acquire timeout: a statement that waits longer is better told the
/// store is unavailable, and the driver's arithmetic stays far from overflow.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use brigade_queue::StoreError;
/// use brigade_sqlite::{MAX_TIMEOUT, SqliteStore};
///
/// // Refused before the file is opened.
/// let path = std::env::temp_dir().join("brigade-max-timeout-example.db");
/// let refused = SqliteStore::builder(&path)
///     .busy_timeout(MAX_TIMEOUT + Duration::from_secs(1))
///     .open()
///     .await;
/// assert!(matches!(refused, Err(StoreError::Invalid(_))));
/// assert!(!path.exists());
/// # }
/// ```
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    SqliteTransactionManager,
};
use sqlx::{SqliteConnection, SqlitePool, TransactionManager};
use tokio::time::Instant;

use crate::busy::retry_while_busy;
use crate::error::store_error;
use crate::store::SqliteStore;
use crate::wakeups::Wakeups;

/// What the write-ahead log keeps on disk, in bytes, once checkpoints have caught up.
///
/// The log grows while a reader holds an old snapshot (a long query, a backup, a process
/// stopped inside a read), since no checkpoint can pass that snapshot; SQLite then reuses
/// the file from its start but never shrinks it, so a spike stays on disk for good. With
/// this limit the first commit after a checkpoint has caught up cuts the file back to it.
/// 64 MiB is sixteen times what the log reaches between SQLite's automatic checkpoints
/// (1000 pages of 4 KiB), so ordinary work never pays for cutting the file and growing it
/// again; a commit larger than the limit leaves the file at its own size.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How durable a commit is when `commit` returns (SQLite's `synchronous` setting, in WAL
/// mode).
///
/// # Examples
///
/// ```
/// use brigade_sqlite::Synchronous;
///
/// assert_eq!(Synchronous::default(), Synchronous::Full);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// Every commit is flushed to the disk (`fsync` of the write-ahead log) before it
    /// returns: an acknowledged enqueue or ack survives a power loss. The default.
    #[default]
    Full,
    /// Commits are flushed at checkpoints only. A process crash loses nothing; a power
    /// loss or an OS crash can lose the last transactions before the loss (enqueues the
    /// producer saw acknowledged, acks a worker saw recorded, which then run again), but
    /// never corrupts the file. Several times more commits per second on slow disks.
    Normal,
}

/// Configures a [`SqliteStore`]: the file, durability, busy timeout, pool, migrations.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), brigade_queue::StoreError> {
/// use std::time::Duration;
/// use brigade_sqlite::{SqliteStore, Synchronous};
///
/// let store = SqliteStore::builder("jobs.db")
///     .synchronous(Synchronous::Normal)
///     .busy_timeout(Duration::from_secs(10))
///     .open()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    synchronous: Synchronous,
    busy_timeout: Duration,
    max_connections: u32,
    acquire_timeout: Duration,
    migrate: bool,
}

impl SqliteStoreBuilder {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            migrate: true,
        }
    }

    /// How durable each commit is (default [`Synchronous::Full`]).
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long a statement waits for another process's write lock before it fails as
    /// [`StoreError::Unavailable`] (default 5 s, at most [`MAX_TIMEOUT`]); workers retry
    /// such failures.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The most connections the store opens (default 8). In WAL mode readers never wait
    /// for the writer; writes from this process take turns on an in-process lock first,
    /// so extra connections serve reads and your own transactions.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), brigade_queue::StoreError> {
    /// let store = brigade_sqlite::SqliteStore::builder("jobs.db").max_connections(4).open().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections;
        self
    }

    /// How long a call waits for a free connection before it fails as unavailable
    /// (default 5 s, at most [`MAX_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), brigade_queue::StoreError> {
    /// use std::time::Duration;
    /// let store = brigade_sqlite::SqliteStore::builder("jobs.db")
    ///     .acquire_timeout(Duration::from_secs(1))
    ///     .open()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Whether `open` brings the schema up to date (default true). Turn it off where
    /// migrations run as a deploy step ([`SqliteStore::migrate`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), brigade_queue::StoreError> {
    /// let store = brigade_sqlite::SqliteStore::builder("jobs.db").migrate(false).open().await?;
    /// store.migrate().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Opens (creating it if missing) the file in WAL mode and migrates unless told not to.
    ///
    /// Any number of processes may open the same file at once, a fresh one too: an open
    /// or a migration that SQLite refuses as busy without waiting (switching a new file to
    /// WAL mode does) is tried again until the busy timeout has passed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for zero connections, a timeout out of range (zero, or
    /// above [`MAX_TIMEOUT`]), a path that names no file (empty, `:memory:`, a `file:`
    /// URI: each connection of the pool would open a database of its own) or a SQLite too
    /// old for the store's statements; [`StoreError::Unavailable`] when the file cannot be opened or stays
    /// locked past the busy timeout; [`StoreError::Backend`] carrying a
    /// [`SchemaTooNew`](crate::SchemaTooNew) when a newer build migrated the file past
    /// what this one knows (checked with migrations turned off too).
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        self.check()?;
        let deadline = Instant::now() + self.busy_timeout;
        let (pool, wakeups) = retry_while_busy(deadline, || self.connect()).await?;
        let store = SqliteStore::from_parts(pool, self.path, self.busy_timeout, wakeups);
        if self.migrate {
            store.migrate_until(deadline).await?;
        } else {
            store.check_schema().await?;
        }
        Ok(store)
    }

    /// A pool on the file, with one connection open: the one that switched the file to
    /// WAL mode, or found it in WAL mode already.
    async fn connect(&self) -> Result<(SqlitePool, Arc<Wakeups>), StoreError> {
        let synchronous = match self.synchronous {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::new()
            .filename(&self.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(self.busy_timeout)
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())
            // The store declares no foreign keys; skip the per-statement checks.
            .foreign_keys(false);
        let wakeups = Arc::new(Wakeups::default());
        let hooks = Arc::clone(&wakeups);
        let pool = SqlitePoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            // Connections live as long as the store: the commit hooks are keyed by them.
            .idle_timeout(None)
            .max_lifetime(None)
            // An in-process file handle does not go stale the way a socket does.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                let hooks = Arc::clone(&hooks);
                Box::pin(async move { hooks.install(conn).await })
            })
            .after_release(|conn, _meta| Box::pin(end_abandoned_transaction(conn)))
            .connect_with(options)
            .await
            .map_err(store_error)?;
        Ok((pool, wakeups))
    }
}

impl SqliteStoreBuilder {
    /// The settings the store cannot work with, refused before anything is opened.
    fn check(&self) -> Result<(), StoreError> {
        if self.max_connections == 0 {
            return Err(StoreError::invalid("max_connections must be at least 1"));
        }
        for (setting, timeout) in [
            ("busy_timeout", self.busy_timeout),
            ("acquire_timeout", self.acquire_timeout),
        ] {
            if timeout.is_zero() || timeout > MAX_TIMEOUT {
                return Err(StoreError::invalid(format!(
                    "{setting} must be more than zero and at most MAX_TIMEOUT (an hour), not {timeout:?}"
                )));
            }
        }
        let path = self
            .path
            .to_str()
            .ok_or_else(|| StoreError::invalid(format!("the path {:?} is not UTF-8", self.path)))?;
        if path.is_empty() || path == ":memory:" || path.starts_with("file:") || path.contains('\0')
        {
            return Err(StoreError::invalid(format!(
                "the store needs a file every connection opens, not {path:?}"
            )));
        }
        Ok(())
    }
}

/// Rolls back a transaction still open on a connection on its way back to the pool, so
/// that the pool never lends out a connection inside a transaction or holding the file's
/// write lock. `Ok(false)` would close the connection instead; an error closes it too.
///
/// A store call is cancelled wherever its caller stops waiting (a worker's store timeout
/// drops the future), and sqlx 0.8 does not always roll back what a dropped future began:
/// `begin_with` runs the `BEGIN` on the connection's thread, then awaits that thread once
/// more to check that a transaction opened, and only then builds the `Transaction` whose
/// drop rolls back. Dropped in between, it gives the connection back inside a transaction
/// that nothing will end: it keeps SQLite's write lock, so every other writer of the file,
/// in this process or another, waits the busy timeout out, and its next borrower's `BEGIN`
/// fails ("non-zero transaction depth"). Every connection passes through here whatever
/// point it was abandoned at, and whoever began the transaction (a store call, a caller's
/// [`SqliteStore::begin`], a migration); running each store call to its end in a task of
/// its own instead would cover the store's calls but not a caller's `begin`.
///
/// sqlx's count of open transactions is exact: the connection's thread raises it when a
/// `BEGIN` succeeds and rolls back a `BEGIN` whose answer nobody took. A transaction
/// dropped the ordinary way has queued its own rollback, which may still be ahead of this
/// one on the connection's thread; the rollback here then finds nothing open and does
/// nothing.
async fn end_abandoned_transaction(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    // Each rollback ends one level (a savepoint, then the transaction) or fails; the count
    // bounds the loop.
    for _ in 0..SqliteTransactionManager::get_transaction_depth(conn) {
        if SqliteTransactionManager::get_transaction_depth(conn) == 0 {
            break;
        }
        SqliteTransactionManager::rollback(conn).await?;
    }
    Ok(true)
}
