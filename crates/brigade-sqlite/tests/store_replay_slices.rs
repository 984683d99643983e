//! `replay_all` over more dead jobs than one statement changes: it goes slice by slice
//! (each a short hold of the file's write lock) and brings back every job that was dead
//! when it began, and none that died after.

mod common;

use brigade_queue::{NewJob, Store};
use brigade_sqlite::{MAX_BATCH, SqliteStore};
use serde_json::json;
use sqlx::Connection;

const QUEUE: &str = "replayed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_brings_back_every_dead_job_slice_by_slice_and_none_that_died_after() {
    let dir = common::TempDir::new();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let jobs = MAX_BATCH + 2;
    for part in (0..jobs).collect::<Vec<_>>().chunks(MAX_BATCH) {
        let batch = part.iter().map(|n| NewJob::new(QUEUE, json!(n))).collect();
        store.enqueue_batch(batch).await.expect("enqueue");
    }

    // Every job dead a minute ago but the last, which is still running when the replay
    // begins, and dies while its slices go: a trigger buries it as the first slice brings
    // back the first job. Its death is stamped an hour ahead, for a death in a later
    // millisecond than the replay began; it must wait for the next replay rather than come
    // back twice in one.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("a second connection to the file");
    let stamp = "(CAST(unixepoch('subsec') * 1000000 AS INTEGER))";
    sqlx::query(&format!(
        "UPDATE jobs SET state = 'dead', attempt = 1, finished_at = {stamp} - 60000000,
             last_error = 'failed'"
    ))
    .execute(&mut conn)
    .await
    .expect("bury every job");
    sqlx::query(&format!(
        "UPDATE jobs SET state = 'running', finished_at = NULL, last_error = NULL,
             lease_token = 1, lease_until = {stamp} + 3600000000
         WHERE id = (SELECT max(id) FROM jobs)"
    ))
    .execute(&mut conn)
    .await
    .expect("one job still running");
    sqlx::query(&format!(
        "CREATE TRIGGER dies_during_the_replay AFTER UPDATE OF state ON jobs
         WHEN OLD.state = 'dead' AND NEW.state = 'available'
              AND NEW.id = (SELECT min(id) FROM jobs)
         BEGIN
             UPDATE jobs SET state = 'dead', finished_at = {stamp} + 3600000000,
                 lease_until = NULL, last_error = 'failed again'
             WHERE id = (SELECT max(id) FROM jobs);
         END"
    ))
    .execute(&mut conn)
    .await
    .expect("a death during the replay");
    conn.close().await.expect("close");

    let replayed = store.replay_all(QUEUE).await.expect("replay_all");
    assert_eq!(
        replayed,
        (jobs - 1) as u64,
        "every job dead before the replay"
    );
    let counts = store.counts(QUEUE).await.expect("counts");
    assert_eq!(counts.available, (jobs - 1) as u64);
    assert_eq!(counts.dead, 1, "the later death waits for the next replay");
    assert_eq!(counts.running, 0, "the running job died during the replay");
}
