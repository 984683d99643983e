//! What every SQLite test starts from: a fresh file in a directory of its own, removed
//! when the test ends.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use brigade_sqlite::SqliteStore;

/// A directory under the system's temp dir, deleted on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "brigade-sqlite-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store on a fresh file. The directory lives as long as the test process (the kit's
/// checks take the store by value and cannot hold a guard): it is leaked on purpose and
/// small.
pub(crate) async fn fresh_store() -> SqliteStore {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.path().join("jobs.db"))
        .await
        .expect("open and migrate");
    std::mem::forget(dir);
    store
}

/// A store on a fresh file in `dir`.
pub(crate) async fn store_in(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("jobs.db"))
        .await
        .expect("open and migrate")
}
