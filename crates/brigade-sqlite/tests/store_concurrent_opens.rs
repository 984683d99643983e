//! Any number of stores (standing for processes) may open, and migrate, a fresh file at
//! once: the first to switch it to WAL mode takes an exclusive lock that SQLite does not
//! wait for with the busy timeout, and the others retry their open instead of failing.

mod common;

use std::sync::Arc;

use brigade_queue::{NewJob, Store};
use brigade_sqlite::SqliteStore;
use serde_json::json;
use tokio::sync::Barrier;

const ROUNDS: usize = 100;
const STORES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opening_a_fresh_file_at_once_all_open() {
    for round in 0..ROUNDS {
        let dir = common::TempDir::new();
        let path = dir.path().join("jobs.db");
        let start = Arc::new(Barrier::new(STORES));
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..STORES {
            let (path, start) = (path.clone(), Arc::clone(&start));
            opening.spawn(async move {
                start.wait().await;
                SqliteStore::open(path).await
            });
        }
        let mut stores = Vec::new();
        while let Some(opened) = opening.join_next().await {
            match opened.expect("task") {
                Ok(store) => stores.push(store),
                Err(error) => panic!("round {round}: an open failed: {error}"),
            }
        }
        // Every store works on the one migrated file.
        for (n, store) in stores.iter().enumerate() {
            store
                .enqueue(NewJob::new("opened", json!(n)))
                .await
                .expect("enqueue");
        }
        let counts = stores[0].counts("opened").await.expect("counts");
        assert_eq!(counts.available, STORES as u64, "round {round}");
    }
}
