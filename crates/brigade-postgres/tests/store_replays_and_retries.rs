//! Replaying dead jobs that share a unique key, and a retry asked for the longest delay.

mod common;

use std::time::{Duration, SystemTime};

use brigade_postgres::PgStore;
use brigade_queue::{
    Ack, ClaimRequest, DurableId, EnqueueOptions, JobState, MAX_SCHEDULE_AHEAD, NewJob, Store,
};
use serde_json::json;

/// A job of `queue` that ran once and was buried.
async fn dead_job(store: &PgStore, queue: &str, key: Option<&str>) -> DurableId {
    let options = match key {
        Some(key) => EnqueueOptions::new().unique_key(key),
        None => EnqueueOptions::new(),
    };
    let enqueued = store
        .enqueue(NewJob::new(queue, json!("payload")).with_options(options))
        .await
        .expect("enqueue");
    assert!(!enqueued.duplicate, "the key is free");
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
    let ack = store
        .bury(claims[0].lease(), "failed for good")
        .await
        .expect("bury");
    assert_eq!(ack, Ack::Recorded);
    enqueued.id
}

async fn state(store: &PgStore, id: DurableId) -> JobState {
    store.job(id).await.expect("job").expect("kept").state
}

/// Two dead jobs with one unique key can both be live only one at a time: a replay of the
/// queue brings back the newer of them (and every keyless one), and the older waits for
/// the key as a single replay would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_brings_back_one_dead_job_per_unique_key() {
    let store = common::fresh_store().await;
    let older = dead_job(&store, "mail", Some("welcome-7")).await;
    let newer = dead_job(&store, "mail", Some("welcome-7")).await;
    let keyless = dead_job(&store, "mail", None).await;

    assert_eq!(store.replay_all("mail").await.expect("replay all"), 2);
    assert_eq!(state(&store, older).await, JobState::Dead);
    assert_eq!(state(&store, newer).await, JobState::Available);
    assert_eq!(state(&store, keyless).await, JobState::Available);

    // The key is live again: the older job keeps waiting, and the call still succeeds.
    assert_eq!(store.replay_all("mail").await.expect("replay all"), 0);
    assert_eq!(state(&store, older).await, JobState::Dead);
}

/// A retry asked for more than any store keeps is recorded at the scheduling horizon,
/// not refused (which would leave the job to run again as soon as its lease ran out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_longest_delay_waits_at_the_horizon() {
    let store = common::fresh_store().await;
    let id = store
        .enqueue(NewJob::new("later", json!(1)))
        .await
        .expect("enqueue")
        .id;
    let claims = store
        .claim(ClaimRequest::new(
            "later",
            "worker",
            1,
            Duration::from_secs(30),
        ))
        .await
        .expect("claim");
    let asked = SystemTime::now();
    let ack = store
        .retry(claims[0].lease(), Duration::MAX, "not yet")
        .await
        .expect("retry");
    assert_eq!(ack, Ack::Recorded);

    let job = store.job(id).await.expect("job").expect("kept");
    assert_eq!(job.state, JobState::Available);
    assert_eq!(job.last_error.as_deref(), Some("not yet"));
    let ahead = job.run_at.duration_since(asked).expect("in the future");
    let slack = Duration::from_secs(3_600);
    assert!(
        ahead > MAX_SCHEDULE_AHEAD - slack && ahead < MAX_SCHEDULE_AHEAD + slack,
        "{ahead:?}"
    );
}
