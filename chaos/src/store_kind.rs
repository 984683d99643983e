//! Which store a run puts under faults, and how durable Redis is told to be.
//!
//! The store is named once, on `run`'s command line; every process it starts learns it
//! from the URL it is given (`postgres://`, `redis://`, `sqlite:PATH`), so the worker and
//! the producer need no flag of their own.

use std::fmt;
use std::str::FromStr;

/// The store under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Postgres,
    Redis,
    Sqlite,
}

impl StoreKind {
    /// The store a URL points at.
    pub(crate) fn of_url(url: &str) -> Result<StoreKind, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreKind::Postgres)
        } else if url.starts_with("redis://") {
            Ok(StoreKind::Redis)
        } else if url.starts_with("sqlite:") {
            Ok(StoreKind::Sqlite)
        } else {
            Err(format!(
                "`{url}`: not a postgres://, redis:// or sqlite: URL"
            ))
        }
    }

    /// Whether the producer can enqueue inside a transaction of its own (Redis cannot).
    pub(crate) fn has_transactions(self) -> bool {
        self != StoreKind::Redis
    }

    /// Whether the store is a server the harness can crash (SQLite is a file).
    pub(crate) fn has_server(self) -> bool {
        self != StoreKind::Sqlite
    }
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "postgres" => Ok(StoreKind::Postgres),
            "redis" => Ok(StoreKind::Redis),
            "sqlite" => Ok(StoreKind::Sqlite),
            other => Err(format!(
                "--store takes postgres, redis or sqlite, not `{other}`"
            )),
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Postgres => "postgres",
            StoreKind::Redis => "redis",
            StoreKind::Sqlite => "sqlite",
        })
    }
}

/// Redis's `appendfsync`: `always` flushes the append-only file before each reply, so a
/// crash keeps every acknowledged write; `everysec` flushes once a second, so a crash can
/// lose up to a second of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fsync {
    Always,
    Everysec,
}

impl FromStr for Fsync {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::Everysec),
            other => Err(format!(
                "--redis-fsync takes always or everysec, not `{other}`"
            )),
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
        })
    }
}
