//! The largest claim a caller can ask for reaches Redis as a count its commands take: a
//! claim asks for at most `MAX_BATCH` jobs. (A retry's longest delay is a kit check,
//! `a_retry_past_the_horizon_waits_at_it`.)
#![cfg(feature = "testkit")]

mod common;

use brigade_queue::testkit::{LONG_LEASE, SHORT_LEASE, claim, rescue_after};
use brigade_queue::{Ack, NewJob, Store};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_of_usize_max_takes_a_given_back_job_that_can_still_end() {
    let store = common::fresh_store().await;
    let id = store
        .enqueue(NewJob::new("huge", json!(0)))
        .await
        .expect("enqueue")
        .id;
    let first = claim(&store, "huge", 1, LONG_LEASE).await;
    assert_eq!(first.len(), 1);
    assert_eq!(
        store.release(first[0].lease()).await.expect("release"),
        Ack::Recorded
    );

    // Given back, it is claimed first; the lease it gets must be one the rescuer sees.
    let again = claim(&store, "huge", usize::MAX, SHORT_LEASE).await;
    assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(store.counts("huge").await.expect("counts").running, 1);
    let rescued = rescue_after(&store, "huge", SHORT_LEASE, 1).await;
    assert_eq!((rescued.requeued, rescued.dead), (1, 0));

    let last = claim(&store, "huge", usize::MAX, LONG_LEASE).await;
    assert_eq!(last.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(
        store.complete(last[0].lease()).await.expect("complete"),
        Ack::Recorded
    );
    let counts = store.counts("huge").await.expect("counts");
    assert_eq!(
        (counts.available, counts.running, counts.completed),
        (0, 0, 1),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_and_claim_of_usize_max_takes_a_given_back_job() {
    let store = common::fresh_store().await;
    let batch = (0..2).map(|n| NewJob::new("carry", json!(n))).collect();
    store.enqueue_batch(batch).await.expect("enqueue");
    let held = claim(&store, "carry", 2, LONG_LEASE).await;
    assert_eq!(held.len(), 2);
    assert_eq!(
        store.release(held[1].lease()).await.expect("release"),
        Ack::Recorded
    );

    let request = brigade_queue::ClaimRequest::new("carry", "kit", usize::MAX, LONG_LEASE);
    let (acks, claims) = store.complete_and_claim(&[held[0].lease()], request).await;
    assert_eq!(acks.len(), 1);
    assert_eq!(*acks[0].as_ref().expect("ack"), Ack::Recorded);
    let claims = claims.expect("claim");
    assert_eq!(
        claims.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![held[1].id]
    );
    assert_eq!(
        store.complete(claims[0].lease()).await.expect("complete"),
        Ack::Recorded
    );
    let counts = store.counts("carry").await.expect("counts");
    assert_eq!((counts.running, counts.completed), (0, 2), "{counts:?}");
}
