//! Jobs given back on Redis (rescued from an expired lease, released at shutdown) wait on
//! their pending stream entry and are claimed ahead of the jobs that arrived after them,
//! one per claim: a batch that came back together goes out in different claims, so a job
//! that kills its worker does not take the same neighbours down with it on every attempt.
#![cfg(feature = "testkit")]

mod common;

use std::collections::HashSet;

use brigade_queue::testkit::{LONG_LEASE, SHORT_LEASE, claim, rescue_after};
use brigade_queue::{Ack, ClaimRequest, DurableId, NewJob, Store};
use brigade_redis::RedisStore;
use serde_json::json;

/// A job of `queue` claimed once and released: it waits on its pending entry.
async fn given_back_job(store: &RedisStore, queue: &str) -> DurableId {
    let id = store
        .enqueue(NewJob::new(queue, json!(0)))
        .await
        .expect("enqueue")
        .id;
    let held = claim(store, queue, 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(
        store.release(held.lease()).await.expect("release"),
        Ack::Recorded
    );
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_came_back_together_go_out_in_different_claims() {
    let store = common::fresh_store().await;
    let batch = (0..3).map(|n| NewJob::new("spread", json!(n))).collect();
    store.enqueue_batch(batch).await.expect("enqueue");
    let lost: HashSet<_> = claim(&store, "spread", 3, SHORT_LEASE)
        .await
        .iter()
        .map(|claim| claim.id)
        .collect();
    assert_eq!(lost.len(), 3, "one worker held the three when it died");
    let later = (3..9).map(|n| NewJob::new("spread", json!(n))).collect();
    store.enqueue_batch(later).await.expect("enqueue");
    rescue_after(&store, "spread", SHORT_LEASE, 3).await;

    for round in 0..3 {
        let claims = claim(&store, "spread", 3, LONG_LEASE).await;
        assert_eq!(claims.len(), 3, "round {round}: a full claim");
        let returned: Vec<_> = claims
            .iter()
            .filter(|claim| lost.contains(&claim.id))
            .collect();
        assert_eq!(
            returned.len(),
            1,
            "round {round}: one given-back job per claim, first: {claims:?}"
        );
        assert_eq!(
            claims[0].id, returned[0].id,
            "round {round}: ahead of the rest"
        );
        assert_eq!(returned[0].attempt, 2, "the expired run counted");
        for claim in &claims {
            assert_eq!(
                store.complete(claim.lease()).await.expect("ack"),
                Ack::Recorded
            );
        }
    }
    let counts = store.counts("spread").await.expect("counts");
    assert_eq!((counts.available, counts.completed), (0, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_returned_job_is_not_claimed() {
    let store = common::fresh_store().await;
    let id = given_back_job(&store, "gone").await;
    assert!(store.cancel(id).await.expect("cancel"));
    assert!(claim(&store, "gone", 5, LONG_LEASE).await.is_empty());
    let counts = store.counts("gone").await.expect("counts");
    assert_eq!((counts.available, counts.cancelled), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_fails_midway_leaves_what_it_leased_rescuable() {
    let store = common::fresh_store().await;
    let id = given_back_job(&store, "broken").await;
    // A lower priority level whose stream key holds a string: the claim leases the
    // given-back job, then fails reading that level. Redis keeps what the script did.
    let base = format!("{}:{{broken}}:", store.prefix());
    let mut conn = store.connection();
    let _: () = redis::pipe()
        .cmd("ZADD")
        .arg(format!("{base}levels"))
        .arg(-1)
        .arg(-1)
        .ignore()
        .cmd("SET")
        .arg(format!("{base}ready:-1"))
        .arg("not a stream")
        .ignore()
        .query_async(&mut conn)
        .await
        .expect("break a level");
    store
        .claim(ClaimRequest::new("broken", "kit", 5, SHORT_LEASE))
        .await
        .expect_err("the claim fails");

    let lease: Option<f64> = redis::cmd("ZSCORE")
        .arg(format!("{base}leases"))
        .arg(id.get())
        .query_async(&mut conn)
        .await
        .expect("zscore");
    assert!(lease.is_some(), "the leased job is in `leases`");
    assert_eq!(store.counts("broken").await.expect("counts").running, 1);
    let rescued = rescue_after(&store, "broken", SHORT_LEASE, 1).await;
    assert_eq!((rescued.requeued, rescued.dead), (1, 0));

    let _: () = redis::pipe()
        .cmd("ZREM")
        .arg(format!("{base}levels"))
        .arg(-1)
        .ignore()
        .cmd("DEL")
        .arg(format!("{base}ready:-1"))
        .ignore()
        .query_async(&mut conn)
        .await
        .expect("mend the level");
    let again = claim(&store, "broken", 5, LONG_LEASE).await;
    assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(
        store.complete(again[0].lease()).await.expect("ack"),
        Ack::Recorded
    );
    let counts = store.counts("broken").await.expect("counts");
    assert_eq!(
        (counts.available, counts.running, counts.completed),
        (0, 0, 1),
        "{counts:?}"
    );
}
