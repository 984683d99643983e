//! A replay racing an enqueue of the same unique key: the key goes to whoever commits
//! first, and the replay that loses answers as if the key had been taken before it
//! began, instead of failing.

mod common;

use std::time::Duration;

use brigade_postgres::PgStore;
use brigade_queue::{ClaimRequest, DurableId, EnqueueOptions, JobState, NewJob, Store};
use serde_json::json;
use sqlx::{Postgres, Transaction};

fn job(queue: &str, key: Option<&str>) -> NewJob {
    let options = match key {
        Some(key) => EnqueueOptions::new().unique_key(key),
        None => EnqueueOptions::new(),
    };
    NewJob::new(queue, json!(key)).with_options(options)
}

/// A job of `queue` that ran and died.
async fn dead_job(store: &PgStore, queue: &str, key: Option<&str>) -> DurableId {
    let id = store.enqueue(job(queue, key)).await.expect("enqueue").id;
    let claims = store
        .claim(ClaimRequest::new(
            queue,
            "worker",
            1,
            Duration::from_secs(30),
        ))
        .await
        .expect("claim");
    assert_eq!(claims.len(), 1);
    assert!(
        store
            .bury(claims[0].lease(), "failed for good")
            .await
            .expect("bury")
            .is_recorded()
    );
    id
}

/// Another producer's transaction, left open, that has enqueued a job of `queue` with
/// `key`; and its backend's pid.
async fn enqueue_uncommitted(
    store: &PgStore,
    queue: &str,
    key: &str,
) -> (Transaction<'static, Postgres>, i32) {
    let mut tx = store.pool().begin().await.expect("begin");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await
        .expect("pid");
    store
        .enqueue_in(&mut tx, job(queue, Some(key)))
        .await
        .expect("enqueue");
    (tx, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_loses_the_key_to_an_enqueue_answers_false() {
    let store = common::fresh_store().await;
    let dead = dead_job(&store, "mail", Some("K")).await;
    let (producer, producer_pid) = enqueue_uncommitted(&store, "mail", "K").await;

    let replaying = tokio::spawn({
        let store = store.clone();
        async move { store.replay(dead).await }
    });
    common::wait_until_blocked(store.pool(), producer_pid, 1).await;
    producer.commit().await.expect("the producer commits first");

    let replayed = tokio::time::timeout(Duration::from_secs(30), replaying)
        .await
        .expect("the replay ends")
        .expect("task");
    assert!(
        !replayed.expect("no error: the key is taken"),
        "not replayed"
    );
    let record = store.job(dead).await.expect("job").expect("kept");
    assert_eq!(record.state, JobState::Dead);
    assert_eq!(store.counts("mail").await.expect("counts").available, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_skips_a_job_whose_key_an_enqueue_took_meanwhile() {
    let store = common::fresh_store().await;
    let taken = dead_job(&store, "mail", Some("K")).await;
    let free_key = dead_job(&store, "mail", Some("L")).await;
    let no_key = dead_job(&store, "mail", None).await;
    let (producer, producer_pid) = enqueue_uncommitted(&store, "mail", "K").await;

    let replaying = tokio::spawn({
        let store = store.clone();
        async move { store.replay_all("mail").await }
    });
    common::wait_until_blocked(store.pool(), producer_pid, 1).await;
    producer.commit().await.expect("the producer commits first");

    let replayed = tokio::time::timeout(Duration::from_secs(30), replaying)
        .await
        .expect("the replay ends")
        .expect("task")
        .expect("no error: the job whose key is taken is skipped");
    assert_eq!(replayed, 2, "the others are replayed");
    for (id, state) in [
        (taken, JobState::Dead),
        (free_key, JobState::Available),
        (no_key, JobState::Available),
    ] {
        let record = store.job(id).await.expect("job").expect("kept");
        assert_eq!(record.state, state, "{id:?}");
    }
}
