//! The store's side of a run: the PostgreSQL cluster or the Redis server on the `db` host,
//! or the SQLite file every process opens. The orchestrator and the faults ask it for its
//! URL and to crash and restart; the rest of a run does not know which it is.

use crate::cluster::Cluster;
use crate::netns::Network;
use crate::redis_server::RedisServer;
use crate::sqlite_file::SqliteFile;
use crate::store_kind::{Fsync, StoreKind};

/// Where the store lives.
#[derive(Debug)]
pub(crate) enum Server {
    Postgres(Cluster),
    Redis(RedisServer),
    Sqlite(SqliteFile),
}

impl Server {
    /// Sets the store up (a server on the `db` host, or a file's directory).
    pub(crate) fn create(
        store: StoreKind,
        fsync: Fsync,
        network: &Network,
    ) -> Result<Server, String> {
        match store {
            StoreKind::Postgres => Cluster::create(network).map(Server::Postgres),
            StoreKind::Redis => RedisServer::create(network, fsync).map(Server::Redis),
            StoreKind::Sqlite => SqliteFile::create().map(Server::Sqlite),
        }
    }

    /// The URL every process connects with; its scheme names the store.
    pub(crate) fn url(&self) -> String {
        match self {
            Server::Postgres(cluster) => cluster.url(),
            Server::Redis(server) => server.url(),
            Server::Sqlite(file) => file.url(),
        }
    }

    /// Crashes the server (no clean shutdown); there is none for a file.
    pub(crate) fn crash(&self) -> Result<(), String> {
        match self {
            Server::Postgres(cluster) => cluster.crash(),
            Server::Redis(server) => server.crash(),
            Server::Sqlite(_) => Err("a SQLite file has no server to crash".to_owned()),
        }
    }

    /// Starts the crashed server again, on its own data.
    pub(crate) fn start(&self) -> Result<(), String> {
        match self {
            Server::Postgres(cluster) => cluster.start(),
            Server::Redis(server) => server.start(),
            Server::Sqlite(_) => Ok(()),
        }
    }

    /// How the crash is done, for the progress output.
    pub(crate) fn crash_name(&self) -> &'static str {
        match self {
            Server::Postgres(_) => "PostgreSQL stop -m immediate, restart",
            Server::Redis(_) => "redis-server kill -9, restart from its append-only file",
            Server::Sqlite(_) => "no server",
        }
    }

    /// The SQLite file, for its integrity checks.
    pub(crate) fn sqlite(&self) -> Option<&SqliteFile> {
        match self {
            Server::Sqlite(file) => Some(file),
            _ => None,
        }
    }
}
