//! A claim of several jobs hands them out in the contract's order: highest priority,
//! then oldest run-at, then oldest id.

mod common;

use std::time::{Duration, SystemTime};

use brigade_queue::{ClaimRequest, EnqueueOptions, NewJob, Store};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_claim_orders_equal_priorities_by_run_at_before_id() {
    let store = common::fresh_store().await;
    let at = |ago: u64| EnqueueOptions::new().run_at(SystemTime::now() - Duration::from_secs(ago));
    let recent = store
        .enqueue(NewJob::new("ordered", json!("recent")).with_options(at(1)))
        .await
        .expect("enqueue")
        .id;
    let older = store
        .enqueue(NewJob::new("ordered", json!("older")).with_options(at(60)))
        .await
        .expect("enqueue")
        .id;
    let first = store
        .enqueue(NewJob::new("ordered", json!("urgent")).with_options(at(0).priority(5)))
        .await
        .expect("enqueue")
        .id;
    assert!(recent < older, "the recent job has the older id");

    let claims = store
        .claim(ClaimRequest::new(
            "ordered",
            "worker",
            3,
            Duration::from_secs(30),
        ))
        .await
        .expect("claim");
    let order: Vec<_> = claims.iter().map(|claim| claim.id).collect();
    assert_eq!(order, [first, older, recent]);
}
