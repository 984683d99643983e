//! A heartbeat that arrives after its lease expired does not renew it, rescued or not: by
//! then another run may hold the units the lease held, and renewing it would let two runs
//! hold a capacity of one. An end recorded under the lost lease is still accepted while no
//! rescue or claim has taken the job.

mod common;

use std::time::Duration;

use brigade_queue::{Ack, ClaimRequest, GlobalConcurrency, NewJob, Store};
use serde_json::json;

const QUEUE: &str = "late";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_after_the_lease_expired_does_not_renew_it() {
    let store = common::fresh_store().await;
    store
        .enqueue_batch(vec![
            NewJob::new(QUEUE, json!("a")),
            NewJob::new(QUEUE, json!("b")),
        ])
        .await
        .expect("enqueue");
    let short = Duration::from_millis(300);
    let a = store
        .claim(ClaimRequest::new(QUEUE, "worker-a", 1, short))
        .await
        .expect("claim a")
        .pop()
        .expect("a");
    let b = store
        .claim(ClaimRequest::new(
            QUEUE,
            "worker-b",
            1,
            Duration::from_secs(30),
        ))
        .await
        .expect("claim b")
        .pop()
        .expect("b");
    let limit = GlobalConcurrency::new("one-at-a-time", 1).expect("limit");
    assert!(
        store
            .acquire_units(&limit, a.lease(), 1, short)
            .await
            .expect("acquire a"),
        "a takes the only unit"
    );

    // A's worker pauses past its lease: its unit expires, and B takes it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        store
            .acquire_units(&limit, b.lease(), 1, Duration::from_secs(30))
            .await
            .expect("acquire b"),
        "the expired unit is B's now"
    );

    // A's heartbeat arrives before any rescue: the lease is lost all the same.
    let renewed = store
        .heartbeat(&[a.lease()], Duration::from_secs(30))
        .await
        .expect("heartbeat");
    assert!(
        renewed.is_empty(),
        "an expired lease was renewed: {renewed:?}"
    );
    // B still holds the only unit: A's lost lease renewed no unit either.
    assert!(
        !store
            .acquire_units(&limit, a.lease(), 1, Duration::from_secs(30))
            .await
            .expect("acquire a again"),
        "one unit, held by B"
    );
    // B's lease, unexpired, is renewed.
    let renewed = store
        .heartbeat(&[b.lease()], Duration::from_secs(30))
        .await
        .expect("heartbeat");
    assert_eq!(renewed, vec![b.lease()]);
    // An end of A's run is still recorded: nothing has taken the job since.
    assert_eq!(
        store.complete(a.lease()).await.expect("complete"),
        Ack::Recorded
    );
}
