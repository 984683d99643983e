//! The SQLite file under test: a fresh directory for it (the file, its `-wal` and `-shm`
//! companions), and the integrity check run after every fault.

use std::path::PathBuf;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// The prefix of the file's directory under the temp dir; the orchestrator's pid follows.
const DIR_PREFIX: &str = "brigade-chaos-sqlite-";

/// The database file; dropping it deletes its directory.
#[derive(Debug)]
pub(crate) struct SqliteFile {
    dir: PathBuf,
}

impl SqliteFile {
    /// A directory for a file that does not exist yet (the first store to open it creates
    /// and migrates it).
    pub(crate) fn create() -> Result<SqliteFile, String> {
        crate::cluster::remove_leftover_dirs(DIR_PREFIX, |_| {});
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        Ok(SqliteFile { dir })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join("jobs.db")
    }

    /// `sqlite:PATH`.
    pub(crate) fn url(&self) -> String {
        format!("sqlite:{}", self.path().display())
    }

    /// `PRAGMA integrity_check` on a read-only connection of its own (not one of a store's
    /// pools, whose connections a fault may have left mid-transaction): `Ok("ok")` for a
    /// sound file, else what SQLite found.
    pub(crate) async fn integrity_check(&self) -> Result<String, String> {
        let options = SqliteConnectOptions::new()
            .filename(self.path())
            .read_only(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|error| format!("integrity check: cannot open the file: {error}"))?;
        let found: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut conn)
            .await
            .map_err(|error| format!("integrity check: {error}"))?;
        let _ = conn.close().await;
        Ok(found.join("; ").replace(char::is_whitespace, "_"))
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
