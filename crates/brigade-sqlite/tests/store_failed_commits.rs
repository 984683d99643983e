//! A write whose commit fails (a full disk, an I/O error) answers the error: the operator
//! is not told a dead job was replayed while it is still dead, and a retention run that
//! follows does not delete it as the dead job it still is.
#![cfg(unix)]

mod common;

use std::time::Duration;

use brigade_queue::{Ack, ClaimRequest, DurableId, JobState, NewJob, Store};
use brigade_sqlite::SqliteStore;
use serde_json::json;

/// The limit is the process's, and `cargo test` runs a binary's tests on threads of one
/// process: each test here holds this for its whole run, so none writes its setup under
/// another's limit, nor puts back a limit that another set.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// While alive, no write of this process lands past the first byte of any file: SQLite's
/// commits fail as they would on a full disk. Dropped, it puts back the limit and the
/// signal's handler it found, so the process is left as it was whatever the test does.
struct DiskRefusesWrites {
    limit: libc::rlimit,
    handler: libc::sighandler_t,
}

impl DiskRefusesWrites {
    fn start(_one_at_a_time: &tokio::sync::MutexGuard<'_, ()>) -> Self {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid `rlimit` for the call to fill in.
        let read = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) };
        assert_eq!(read, 0, "getrlimit: {}", std::io::Error::last_os_error());
        // A write past the limit raises SIGXFSZ, whose default action ends the process;
        // ignored, the write fails with EFBIG instead, which SQLite reports.
        // SAFETY: SIG_IGN installs no handler code; the previous handler is put back on drop.
        let handler = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        assert_ne!(
            handler,
            libc::SIG_ERR,
            "signal: {}",
            std::io::Error::last_os_error()
        );
        let refusing = Self { limit, handler };
        let one_byte = libc::rlimit {
            rlim_cur: 1,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `one_byte` is a valid `rlimit`; lowering the soft limit needs no privilege.
        let set = unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &one_byte) };
        assert_eq!(set, 0, "setrlimit: {}", std::io::Error::last_os_error());
        refusing
    }
}

impl Drop for DiskRefusesWrites {
    fn drop(&mut self) {
        // SAFETY: the limit read at the start, within the hard limit that was kept.
        let set = unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &self.limit) };
        // SAFETY: the handler `signal` returned at the start.
        let handler = unsafe { libc::signal(libc::SIGXFSZ, self.handler) };
        // No panic while a panic may be unwinding through here: the process would abort.
        if set != 0 || handler == libc::SIG_ERR {
            eprintln!(
                "could not put back the file size limit or SIGXFSZ's handler: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

async fn dead_job(store: &SqliteStore, queue: &str) -> DurableId {
    let id = store
        .enqueue(NewJob::new(queue, json!(1)))
        .await
        .expect("enqueue")
        .id;
    let claim = store
        .claim(ClaimRequest::new(queue, "w", 1, Duration::from_secs(30)))
        .await
        .expect("claim")
        .pop()
        .expect("claimed");
    let buried = store.bury(claim.lease(), "failed").await.expect("bury");
    assert_eq!(buried, Ack::Recorded);
    id
}

async fn state(store: &SqliteStore, id: DurableId) -> JobState {
    store.job(id).await.expect("job").expect("exists").state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_whose_commit_fails_answers_the_error() {
    let one_at_a_time = ONE_AT_A_TIME.lock().await;
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let id = dead_job(&store, "refused").await;

    let replayed = {
        let _refusing = DiskRefusesWrites::start(&one_at_a_time);
        store.replay(id).await
    };
    assert!(
        matches!(&replayed, Err(error) if error.is_transient()),
        "the commit failed, yet replay answered {replayed:?}"
    );
    assert_eq!(
        state(&store, id).await,
        JobState::Dead,
        "nothing was replayed"
    );

    // The disk takes writes again: the same replay goes through.
    assert!(store.replay(id).await.expect("replay"), "replayed");
    assert_eq!(state(&store, id).await, JobState::Available);
}

/// The rescue is the other write that returns rows outside a transaction of the store's;
/// it reads them all, so SQLite's commit at the statement's end reports its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescue_whose_commit_fails_answers_the_error() {
    let one_at_a_time = ONE_AT_A_TIME.lock().await;
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let id = store
        .enqueue(NewJob::new("abandoned", json!(1)))
        .await
        .expect("enqueue")
        .id;
    let lease = Duration::from_millis(50);
    let claimed = store
        .claim(ClaimRequest::new("abandoned", "w", 1, lease))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    tokio::time::sleep(lease * 3).await;

    let rescued = {
        let _refusing = DiskRefusesWrites::start(&one_at_a_time);
        store.rescue("abandoned").await
    };
    assert!(
        matches!(&rescued, Err(error) if error.is_transient()),
        "the commit failed, yet rescue answered {rescued:?}"
    );
    assert_eq!(
        state(&store, id).await,
        JobState::Running,
        "nothing was rescued"
    );

    let rescued = store.rescue("abandoned").await.expect("rescue");
    assert_eq!((rescued.requeued, rescued.dead), (1, 0));
    assert_eq!(state(&store, id).await, JobState::Available);
}
