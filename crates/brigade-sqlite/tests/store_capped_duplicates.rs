//! A depth cap counts the jobs an enqueue would add: a job whose unique key is already
//! live adds none, so it answers as a duplicate even on a full queue.

mod common;

use brigade_queue::{EnqueueOptions, Enqueued, NewJob, Store};
use serde_json::json;

fn keyed(key: &str, cap: u64) -> NewJob {
    NewJob::new("capped", json!(key))
        .with_options(EnqueueOptions::new().unique_key(key))
        .with_max_depth(Some(cap))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_on_a_full_queue_is_a_duplicate_not_full() {
    let store = common::fresh_store().await;
    let first = store.enqueue(keyed("K", 1)).await.expect("room");
    assert!(!first.duplicate);

    let again = store
        .enqueue(keyed("K", 1))
        .await
        .expect("a duplicate adds nothing");
    assert_eq!(
        again,
        Enqueued {
            id: first.id,
            duplicate: true
        }
    );
    let refused = store
        .enqueue(keyed("L", 1))
        .await
        .expect_err("a new key does not fit");
    assert!(refused.is_full());
    assert_eq!(store.counts("capped").await.expect("counts").available, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_fits_once_its_duplicates_are_left_out() {
    let store = common::fresh_store().await;
    let first = store.enqueue(keyed("K", 2)).await.expect("room");

    // One live job, a cap of two: the batch adds one job (its two K's are duplicates).
    let batch = vec![keyed("K", 2), keyed("M", 2), keyed("K", 2)];
    let enqueued = store.enqueue_batch(batch).await.expect("it fits");
    assert_eq!(enqueued.len(), 3);
    assert_eq!(
        enqueued[0],
        Enqueued {
            id: first.id,
            duplicate: true
        }
    );
    assert!(!enqueued[1].duplicate);
    assert_eq!(enqueued[2], enqueued[0]);
    assert_eq!(store.counts("capped").await.expect("counts").available, 2);

    // Two new keys where one fits: refused whole.
    let refused = store
        .enqueue_batch(vec![keyed("K", 3), keyed("N", 3), keyed("O", 3)])
        .await
        .expect_err("two new jobs do not fit");
    assert!(refused.is_full());
    assert_eq!(store.counts("capped").await.expect("counts").available, 2);
}

/// New keys repeated within one batch count once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_repeated_in_a_batch_counts_once() {
    let store = common::fresh_store().await;
    let enqueued = store
        .enqueue_batch(vec![keyed("K", 1), keyed("K", 1)])
        .await
        .expect("one job added");
    assert!(!enqueued[0].duplicate);
    assert_eq!(
        enqueued[1],
        Enqueued {
            id: enqueued[0].id,
            duplicate: true
        }
    );
    assert_eq!(store.counts("capped").await.expect("counts").available, 1);
}
