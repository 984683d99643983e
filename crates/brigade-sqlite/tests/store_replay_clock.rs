//! `replay_all` after the host's clock stepped back: jobs that died before the step are
//! stamped later than the moment the replay begins, and are replayed all the same.

mod common;

use std::time::Duration;

use brigade_queue::{Ack, ClaimRequest, JobState, NewJob, Store};
use serde_json::json;

const QUEUE: &str = "stepped-back";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_replays_deaths_stamped_ahead_of_the_clock() {
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let ids = store
        .enqueue_batch(vec![
            NewJob::new(QUEUE, json!(1)),
            NewJob::new(QUEUE, json!(2)),
        ])
        .await
        .expect("enqueue");
    let claims = store
        .claim(ClaimRequest::new(QUEUE, "w", 2, Duration::from_secs(30)))
        .await
        .expect("claim");
    for claim in &claims {
        let buried = store.bury(claim.lease(), "failed").await.expect("bury");
        assert_eq!(buried, Ack::Recorded);
    }
    // One died an hour "later" than now: the clock has since stepped back by an hour.
    sqlx::query("UPDATE jobs SET finished_at = finished_at + 3600000000 WHERE id = ?1")
        .bind(ids[0].id.get())
        .execute(store.pool())
        .await
        .expect("stamp the death ahead");

    assert_eq!(store.replay_all(QUEUE).await.expect("replay_all"), 2);
    for enqueued in &ids {
        let job = store.job(enqueued.id).await.expect("job").expect("exists");
        assert_eq!(job.state, JobState::Available, "{:?}", enqueued.id);
    }
}
