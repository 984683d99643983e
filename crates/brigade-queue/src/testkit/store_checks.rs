//! Checks on the [`Store`] methods themselves.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::{LONG_LEASE, SHORT_LEASE, claim, claim_one_eventually, rescue_after};
use crate::{
    Ack, ClaimRequest, DurableId, EnqueueError, EnqueueOptions, GlobalConcurrency, GlobalRate,
    JobState, Lease, NewJob, Queue, Store, StoreError,
};

fn job(queue: &str, n: u64) -> NewJob {
    NewJob::new(queue, json!({ "n": n }))
}

async fn enqueue<S: Store>(store: &S, job: NewJob) -> DurableId {
    store.enqueue(job).await.expect("enqueue").id
}

async fn state<S: Store>(store: &S, id: DurableId) -> JobState {
    store.job(id).await.expect("job").expect("job exists").state
}

/// A job goes in, comes out once with its payload and attempt 1, and ends completed.
pub async fn enqueue_claim_complete<S: Store>(store: S) {
    let id = enqueue(
        &store,
        job("basic", 7).with_options(EnqueueOptions::new().max_attempts(4)),
    )
    .await;
    let claims = claim(&store, "basic", 10, LONG_LEASE).await;
    assert_eq!(claims.len(), 1);
    let first = &claims[0];
    assert_eq!((first.id, first.attempt, first.max_attempts), (id, 1, 4));
    assert_eq!(first.payload, json!({ "n": 7 }));
    assert_eq!(first.queue, "basic");
    assert!(first.enqueued_at <= SystemTime::now() + Duration::from_secs(5));
    assert_eq!(state(&store, id).await, JobState::Running);
    assert!(
        claim(&store, "basic", 10, LONG_LEASE).await.is_empty(),
        "a running job is not claimable"
    );
    assert_eq!(
        store.complete(first.lease()).await.expect("complete"),
        Ack::Recorded
    );
    assert_eq!(state(&store, id).await, JobState::Completed);
    let counts = store.counts("basic").await.expect("counts");
    assert_eq!((counts.completed, counts.live()), (1, 0));
    assert_eq!(
        store.complete(first.lease()).await.expect("complete again"),
        Ack::Stale,
        "a second ack is refused"
    );
}

/// Acks in one batch are answered one by one, in order: current leases recorded, stale
/// ones refused, and a lease listed twice recorded once, its second listing refused as a
/// second ack.
pub async fn complete_many_answers_each_lease<S: Store>(store: S) {
    assert!(store.complete_many(&[]).await.is_empty());
    store
        .enqueue_batch((0..3).map(|n| job("batch-ack", n)).collect())
        .await
        .expect("enqueue");
    let held = claim(&store, "batch-ack", 3, LONG_LEASE).await;
    assert_eq!(held.len(), 3);
    assert_eq!(
        store.complete(held[1].lease()).await.expect("complete"),
        Ack::Recorded
    );
    let leases = [
        held[0].lease(),
        held[1].lease(),
        held[2].lease(),
        held[2].lease(),
    ];
    let answers: Vec<Ack> = store
        .complete_many(&leases)
        .await
        .into_iter()
        .map(|answer| answer.expect("ack"))
        .collect();
    assert_eq!(
        answers.len(),
        leases.len(),
        "one answer per lease: {answers:?}"
    );
    assert_eq!(
        answers,
        [Ack::Recorded, Ack::Stale, Ack::Recorded, Ack::Stale],
        "the lease's second listing is a second ack, refused"
    );
    assert_eq!(
        store.counts("batch-ack").await.expect("counts").completed,
        3
    );
}

/// Acks sent with a claim are answered as `complete_many` answers them (current leases
/// recorded, a stale one refused, an ack of another queue's job recorded too), and the
/// claim leases the jobs still waiting.
pub async fn complete_and_claim_records_then_claims<S: Store>(store: S) {
    store
        .enqueue_batch((0..4).map(|n| job("ack-claim", n)).collect())
        .await
        .expect("enqueue");
    let other = enqueue(&store, job("ack-claim-other", 9)).await;
    let held = claim(&store, "ack-claim", 2, LONG_LEASE).await;
    let elsewhere = claim(&store, "ack-claim-other", 1, LONG_LEASE).await;
    assert_eq!((held.len(), elsewhere.len()), (2, 1));
    assert_eq!(
        store.complete(held[1].lease()).await.expect("complete"),
        Ack::Recorded
    );
    let acks = [held[0].lease(), held[1].lease(), elsewhere[0].lease()];
    let request = ClaimRequest::new("ack-claim", "testkit", 10, LONG_LEASE);
    let (answers, claimed) = store.complete_and_claim(&acks, request).await;
    let answers: Vec<Ack> = answers
        .into_iter()
        .map(|answer| answer.expect("ack"))
        .collect();
    assert_eq!(answers, [Ack::Recorded, Ack::Stale, Ack::Recorded]);
    let claimed = claimed.expect("claim");
    assert_eq!(claimed.len(), 2, "the two jobs still waiting");
    assert!(
        claimed
            .iter()
            .all(|claim| !held.iter().any(|done| done.id == claim.id))
    );
    assert_eq!(state(&store, other).await, JobState::Completed);
    let counts = store.counts("ack-claim").await.expect("counts");
    assert_eq!((counts.completed, counts.running), (2, 2));

    let (answers, claimed) = store
        .complete_and_claim(
            &[],
            ClaimRequest::new("ack-claim", "testkit", 10, LONG_LEASE),
        )
        .await;
    assert!(answers.is_empty());
    assert!(claimed.expect("claim").is_empty(), "nothing left to claim");
}

/// Eight claimers at once never get the same job, and together get every job.
pub async fn claims_are_exclusive<S: Store>(store: S) {
    const JOBS: u64 = 400;
    let batch = (0..JOBS).map(|n| job("exclusive", n)).collect();
    store.enqueue_batch(batch).await.expect("enqueue batch");
    let mut claimers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        claimers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claims = claim(&store, "exclusive", 7, LONG_LEASE).await;
                if claims.is_empty() {
                    return mine;
                }
                mine.extend(claims.into_iter().map(|claim| claim.id));
            }
        });
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    while let Some(mine) = claimers.join_next().await {
        for id in mine.expect("claimer") {
            total += 1;
            assert!(seen.insert(id), "{id} claimed twice");
        }
    }
    assert_eq!(total, JOBS);
}

/// After a lease expires and the job is claimed again, the first holder's ack, retry,
/// dead, release and heartbeat are all refused, even beside the current lease.
pub async fn stale_token_is_refused<S: Store>(store: S) {
    let id = enqueue(&store, job("stale", 1)).await;
    let zombie = claim(&store, "stale", 1, SHORT_LEASE)
        .await
        .pop()
        .expect("claim");
    rescue_after(&store, "stale", SHORT_LEASE, 1).await;
    let current = claim_one_eventually(&store, "stale", LONG_LEASE).await;
    assert_eq!(current.id, id);
    assert!(
        current.token > zombie.token,
        "a new claim gets a newer token"
    );
    let stale = zombie.lease();
    assert_eq!(store.complete(stale).await.expect("complete"), Ack::Stale);
    assert_eq!(
        store
            .retry(stale, Duration::ZERO, "late")
            .await
            .expect("retry"),
        Ack::Stale
    );
    assert_eq!(store.bury(stale, "late").await.expect("bury"), Ack::Stale);
    assert_eq!(store.release(stale).await.expect("release"), Ack::Stale);
    assert!(
        store
            .heartbeat(&[stale], LONG_LEASE)
            .await
            .expect("heartbeat")
            .is_empty()
    );
    // One worker may hold both: a run it stopped that has not ended yet, and the job's
    // next claim. Only the current lease is renewed, and only it is answered.
    assert_eq!(
        store
            .heartbeat(&[stale, current.lease()], LONG_LEASE)
            .await
            .expect("heartbeat"),
        vec![current.lease()],
        "a heartbeat answers by lease, not by job"
    );
    assert_eq!(
        state(&store, id).await,
        JobState::Running,
        "the zombie changed nothing"
    );
    assert_eq!(
        store.complete(current.lease()).await.expect("complete"),
        Ack::Recorded
    );
}

/// A lease that runs out makes the job claimable again, and the lost run counts.
pub async fn expired_lease_is_redelivered_as_an_attempt<S: Store>(store: S) {
    let id = enqueue(
        &store,
        job("expiry", 1).with_options(EnqueueOptions::new().max_attempts(5)),
    )
    .await;
    let first = claim(&store, "expiry", 1, SHORT_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(first.attempt, 1);
    let rescued = rescue_after(&store, "expiry", SHORT_LEASE, 1).await;
    assert_eq!((rescued.requeued, rescued.dead), (1, 0));
    let record = store.job(id).await.expect("job").expect("exists");
    assert_eq!((record.state, record.attempt), (JobState::Available, 1));
    assert!(
        record
            .last_error
            .is_some_and(|error| error.contains("lease")),
        "the rescue says why"
    );
    let second = claim_one_eventually(&store, "expiry", LONG_LEASE).await;
    assert_eq!((second.id, second.attempt), (id, 2));
}

/// A job given back keeps its place: rescued from a dead worker or released by one shutting
/// down, it is claimed before the jobs enqueued after it, so a crashed worker's jobs do not
/// wait behind the backlog that queued up meanwhile.
pub async fn returned_jobs_keep_their_place<S: Store>(store: S) {
    let expired = enqueue(&store, job("place", 0)).await;
    let released = enqueue(&store, job("place", 1)).await;
    let dying = claim(&store, "place", 1, SHORT_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(dying.id, expired);
    let leaving = claim(&store, "place", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(leaving.id, released);
    let mut expected = vec![expired, released];
    for n in 2..6 {
        expected.push(enqueue(&store, job("place", n)).await);
    }
    rescue_after(&store, "place", SHORT_LEASE, 1).await;
    assert_eq!(
        store.release(leaving.lease()).await.expect("release"),
        Ack::Recorded
    );
    let mut order = Vec::new();
    for _ in 0..expected.len() {
        let claimed = claim(&store, "place", 1, LONG_LEASE).await;
        order.extend(claimed.iter().map(|claim| claim.id));
    }
    assert_eq!(
        order, expected,
        "given-back jobs first, in their first order"
    );
}

/// A claim never takes more jobs than it asked for, and a given-back job waits behind
/// fresher jobs of a higher priority: a rescued low-priority job must not ride along with
/// a claim the high-priority level already filled.
pub async fn claims_take_at_most_their_limit<S: Store>(store: S) {
    let with = |n, priority| job("limit", n).with_options(EnqueueOptions::new().priority(priority));
    let low = enqueue(&store, with(0, 0)).await;
    assert_eq!(claim(&store, "limit", 1, SHORT_LEASE).await.len(), 1);
    rescue_after(&store, "limit", SHORT_LEASE, 1).await;
    let high = [
        enqueue(&store, with(1, 5)).await,
        enqueue(&store, with(2, 5)).await,
    ];
    let first: Vec<_> = claim(&store, "limit", 2, LONG_LEASE)
        .await
        .iter()
        .map(|claim| claim.id)
        .collect();
    assert_eq!(first, high, "the two high-priority jobs, and nothing more");
    let next: Vec<_> = claim(&store, "limit", 2, LONG_LEASE)
        .await
        .iter()
        .map(|claim| claim.id)
        .collect();
    assert_eq!(next, [low], "then the rescued one");
}

/// Jobs a dead worker held together go out one per claim when rescued, the first first,
/// beside the fresh jobs a claim can take: if one of them is what killed the worker, the
/// others do not die with it again.
pub async fn rescued_jobs_go_out_one_per_claim<S: Store>(store: S) {
    let mut rescued = Vec::new();
    for n in 0..4 {
        rescued.push(enqueue(&store, job("scatter", n)).await);
    }
    let held = claim(&store, "scatter", 4, SHORT_LEASE).await;
    assert_eq!(held.len(), 4, "one worker holds all four");
    rescue_after(&store, "scatter", SHORT_LEASE, 4).await;
    let fresh = [
        enqueue(&store, job("scatter", 4)).await,
        enqueue(&store, job("scatter", 5)).await,
    ];
    let first: HashSet<_> = claim(&store, "scatter", 10, LONG_LEASE)
        .await
        .iter()
        .map(|claim| claim.id)
        .collect();
    assert_eq!(
        first,
        HashSet::from([rescued[0], fresh[0], fresh[1]]),
        "one rescued job, the first, and the fresh ones"
    );
    for &next in &rescued[1..] {
        let claimed: Vec<_> = claim(&store, "scatter", 10, LONG_LEASE)
            .await
            .iter()
            .map(|claim| claim.id)
            .collect();
        assert_eq!(claimed, [next], "rescued jobs one per claim, in order");
    }
    assert!(claim(&store, "scatter", 10, LONG_LEASE).await.is_empty());
}

/// Heartbeats keep a short lease alive well past its length; the rescuer leaves it alone.
pub async fn heartbeat_keeps_the_lease<S: Store>(store: S) {
    enqueue(&store, job("beat", 1)).await;
    let held = claim(&store, "beat", 1, SHORT_LEASE)
        .await
        .pop()
        .expect("claim");
    let until = Instant::now() + SHORT_LEASE * 4;
    while Instant::now() < until {
        let renewed = store
            .heartbeat(&[held.lease()], SHORT_LEASE)
            .await
            .expect("heartbeat");
        assert_eq!(renewed, vec![held.lease()]);
        assert_eq!(store.rescue("beat").await.expect("rescue").total(), 0);
        tokio::time::sleep(SHORT_LEASE / 4).await;
    }
    assert_eq!(
        store.complete(held.lease()).await.expect("complete"),
        Ack::Recorded
    );
}

/// A lease past its expiry is lost, rescued or not: a heartbeat that comes too late
/// does not bring it back (its global units may already be another run's), while one
/// in time still renews the job's next lease.
pub async fn heartbeat_does_not_revive_an_expired_lease<S: Store>(store: S) {
    let id = enqueue(&store, job("late-beat", 1)).await;
    let held = claim(&store, "late-beat", 1, SHORT_LEASE)
        .await
        .pop()
        .expect("claim");
    tokio::time::sleep(SHORT_LEASE * 2).await;
    let renewed = store
        .heartbeat(&[held.lease()], LONG_LEASE)
        .await
        .expect("heartbeat");
    assert!(
        renewed.is_empty(),
        "an expired lease was renewed: {renewed:?}"
    );
    rescue_after(&store, "late-beat", SHORT_LEASE, 1).await;
    let next = claim_one_eventually(&store, "late-beat", SHORT_LEASE).await;
    assert_eq!(next.id, id);
    assert_eq!(
        store
            .heartbeat(&[next.lease()], LONG_LEASE)
            .await
            .expect("heartbeat"),
        vec![next.lease()]
    );
    assert_eq!(
        store.complete(next.lease()).await.expect("complete"),
        Ack::Recorded
    );
}

/// A failed run waits for its run-again time, on the store's clock.
pub async fn retry_waits_for_its_time<S: Store>(store: S) {
    let id = enqueue(&store, job("retry", 1)).await;
    let first = claim(&store, "retry", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    let delay = Duration::from_secs(1);
    let before = Instant::now();
    assert_eq!(
        store
            .retry(first.lease(), delay, "boom")
            .await
            .expect("retry"),
        Ack::Recorded
    );
    assert!(
        claim(&store, "retry", 1, LONG_LEASE).await.is_empty(),
        "not before its time"
    );
    let counts = store.counts("retry").await.expect("counts");
    assert_eq!((counts.scheduled, counts.available), (1, 0));
    let record = store.job(id).await.expect("job").expect("exists");
    assert_eq!(record.last_error.as_deref(), Some("boom"));
    let second = claim_one_eventually(&store, "retry", LONG_LEASE).await;
    assert!(
        before.elapsed() >= delay,
        "claimed {:?} after a {delay:?} retry",
        before.elapsed()
    );
    assert_eq!((second.id, second.attempt), (id, 2));
}

/// A poison job ends: expired leases count as runs, and the last one makes it dead.
pub async fn dead_after_max_attempts_counting_expiries<S: Store>(store: S) {
    let id = enqueue(
        &store,
        job("poison", 1).with_options(EnqueueOptions::new().max_attempts(2)),
    )
    .await;
    claim(&store, "poison", 1, SHORT_LEASE)
        .await
        .pop()
        .expect("first claim");
    assert_eq!(
        rescue_after(&store, "poison", SHORT_LEASE, 1)
            .await
            .requeued,
        1
    );
    let second = claim_one_eventually(&store, "poison", SHORT_LEASE).await;
    assert_eq!(second.attempt, 2);
    assert_eq!(rescue_after(&store, "poison", SHORT_LEASE, 1).await.dead, 1);
    assert_eq!(state(&store, id).await, JobState::Dead);
    assert!(
        claim(&store, "poison", 1, LONG_LEASE).await.is_empty(),
        "dead jobs are never redelivered"
    );
    // A run that fails on its last attempt, recorded by the worker, ends dead too.
    let other = enqueue(
        &store,
        job("poison", 2).with_options(EnqueueOptions::new().max_attempts(1)),
    )
    .await;
    let only = claim(&store, "poison", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert!(only.is_last_attempt());
    assert_eq!(
        store.bury(only.lease(), "no").await.expect("bury"),
        Ack::Recorded
    );
    assert_eq!(state(&store, other).await, JobState::Dead);
    assert_eq!(store.counts("poison").await.expect("counts").dead, 2);
}

/// A released job is claimable at once with its attempt count unchanged.
pub async fn release_is_uncharged<S: Store>(store: S) {
    let id = enqueue(
        &store,
        job("release", 1).with_options(EnqueueOptions::new().max_attempts(1)),
    )
    .await;
    for _ in 0..3 {
        let held = claim(&store, "release", 1, LONG_LEASE)
            .await
            .pop()
            .expect("claim");
        assert_eq!(
            (held.id, held.attempt),
            (id, 1),
            "releases never use up attempts"
        );
        assert_eq!(
            store.release(held.lease()).await.expect("release"),
            Ack::Recorded
        );
    }
    let record = store.job(id).await.expect("job").expect("exists");
    assert_eq!((record.state, record.attempt), (JobState::Available, 0));
}

/// At most one live job per unique key; once it ends, the key is free.
pub async fn unique_keys_allow_one_live_job<S: Store>(store: S) {
    let keyed = |n| job("unique", n).with_options(EnqueueOptions::new().unique_key("report-42"));
    let first = store.enqueue(keyed(1)).await.expect("enqueue");
    assert!(!first.duplicate);
    let again = store.enqueue(keyed(2)).await.expect("enqueue");
    assert_eq!((again.id, again.duplicate), (first.id, true));
    let batch = store
        .enqueue_batch(vec![keyed(3), job("unique", 4)])
        .await
        .expect("batch");
    assert_eq!(
        (batch[0].id, batch[0].duplicate, batch[1].duplicate),
        (first.id, true, false)
    );
    // Still live while running.
    let held = claim(&store, "unique", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(held.id, first.id);
    assert!(store.enqueue(keyed(5)).await.expect("enqueue").duplicate);
    assert_eq!(
        store.complete(held.lease()).await.expect("complete"),
        Ack::Recorded
    );
    let after = store.enqueue(keyed(6)).await.expect("enqueue");
    assert!(!after.duplicate, "a finished job frees its key");
    assert_ne!(after.id, first.id);
    let other_queue = store
        .enqueue(
            NewJob::new("unique-elsewhere", json!(1))
                .with_options(EnqueueOptions::new().unique_key("report-42")),
        )
        .await
        .expect("enqueue");
    assert!(!other_queue.duplicate, "keys are per queue");
}

/// Higher priority first; among equals, the older job.
pub async fn priority_orders_claims<S: Store>(store: S) {
    let with =
        |n, priority| job("priority", n).with_options(EnqueueOptions::new().priority(priority));
    let low = enqueue(&store, with(1, -1)).await;
    let normal = enqueue(&store, with(2, 0)).await;
    let high_a = enqueue(&store, with(3, 5)).await;
    let high_b = enqueue(&store, with(4, 5)).await;
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(
            claim(&store, "priority", 1, LONG_LEASE)
                .await
                .pop()
                .expect("claim")
                .id,
        );
    }
    assert_eq!(order, vec![high_a, high_b, normal, low]);
    let batch: Vec<_> = (0..6)
        .map(|n| with(10 + n, i16::try_from(n % 3).unwrap_or(0)))
        .collect();
    store.enqueue_batch(batch).await.expect("batch");
    let claims = claim(&store, "priority", 6, LONG_LEASE).await;
    let priorities: Vec<i16> = claims.iter().map(|claim| claim.priority).collect();
    assert_eq!(
        priorities,
        vec![2, 2, 1, 1, 0, 0],
        "a batch claim comes out in priority order"
    );
}

/// A job scheduled for later is not claimed before then; one scheduled in the past is due.
pub async fn scheduled_jobs_not_early<S: Store>(store: S) {
    let delay = Duration::from_secs(1);
    let before = Instant::now();
    let later = enqueue(
        &store,
        job("scheduled", 1).with_options(EnqueueOptions::new().delay(delay)),
    )
    .await;
    let past = SystemTime::now() - Duration::from_secs(60);
    let due = enqueue(
        &store,
        job("scheduled", 2).with_options(EnqueueOptions::new().run_at(past)),
    )
    .await;
    let claims = claim(&store, "scheduled", 10, LONG_LEASE).await;
    assert_eq!(
        claims.iter().map(|claim| claim.id).collect::<Vec<_>>(),
        vec![due]
    );
    assert_eq!(
        store.counts("scheduled").await.expect("counts").scheduled,
        1
    );
    let claimed = claim_one_eventually(&store, "scheduled", LONG_LEASE).await;
    assert_eq!(claimed.id, later);
    assert!(
        before.elapsed() >= delay,
        "claimed after {:?}, scheduled {delay:?} ahead",
        before.elapsed()
    );
    let at = SystemTime::now() + Duration::from_secs(3600);
    let far = enqueue(
        &store,
        job("scheduled", 3).with_options(EnqueueOptions::new().run_at(at)),
    )
    .await;
    let record = store.job(far).await.expect("job").expect("exists");
    let off = record
        .run_at
        .duration_since(at)
        .unwrap_or_else(|error| error.duration());
    assert!(
        off < Duration::from_millis(1),
        "run_at kept to the microsecond, off by {off:?}"
    );
}

/// A depth cap counts what an enqueue would add: a job whose unique key a live job holds
/// adds none (it answers as a duplicate even on a full queue), and a key a batch carries
/// twice adds one job.
pub async fn depth_cap_counts_what_a_batch_adds<S: Store>(store: S) {
    let keyed = |queue: &str, key: &str, cap: u64| {
        NewJob::new(queue, json!(key))
            .with_options(EnqueueOptions::new().unique_key(key))
            .with_max_depth(Some(cap))
    };
    let available = |queue: &'static str| {
        let store = &store;
        async move { store.counts(queue).await.expect("counts").available }
    };

    // A duplicate on a full queue is a duplicate; a new key does not fit.
    let first = store
        .enqueue(keyed("capped-one", "K", 1))
        .await
        .expect("room");
    let again = store
        .enqueue(keyed("capped-one", "K", 1))
        .await
        .expect("a duplicate adds nothing");
    assert_eq!((again.id, again.duplicate), (first.id, true));
    let refused = store
        .enqueue(keyed("capped-one", "L", 1))
        .await
        .expect_err("a new key does not fit");
    assert!(refused.is_full());
    assert_eq!(available("capped-one").await, 1);

    // One live job, a cap of two: a batch of K, M, K adds one job.
    let first = store
        .enqueue(keyed("capped-two", "K", 2))
        .await
        .expect("room");
    let batch = vec![
        keyed("capped-two", "K", 2),
        keyed("capped-two", "M", 2),
        keyed("capped-two", "K", 2),
    ];
    let enqueued = store.enqueue_batch(batch).await.expect("it fits");
    assert_eq!((enqueued[0].id, enqueued[0].duplicate), (first.id, true));
    assert!(!enqueued[1].duplicate);
    assert_eq!(enqueued[2], enqueued[0]);
    assert_eq!(available("capped-two").await, 2);
    // Two new keys where one would fit: refused whole.
    let refused = store
        .enqueue_batch(vec![
            keyed("capped-two", "K", 3),
            keyed("capped-two", "N", 3),
            keyed("capped-two", "O", 3),
        ])
        .await
        .expect_err("two new jobs do not fit");
    assert!(refused.is_full());
    assert_eq!(available("capped-two").await, 2);

    // A new key twice in one batch counts once.
    let enqueued = store
        .enqueue_batch(vec![
            keyed("capped-twice", "K", 1),
            keyed("capped-twice", "K", 1),
        ])
        .await
        .expect("one job added");
    assert!(!enqueued[0].duplicate);
    assert_eq!(
        (enqueued[1].id, enqueued[1].duplicate),
        (enqueued[0].id, true)
    );
    assert_eq!(available("capped-twice").await, 1);
}

/// A queue at its depth cap refuses more, handing the job (or the whole batch) back.
pub async fn depth_cap_refuses_and_hands_back<S: Store>(store: S) {
    let queue = Queue::<S, String>::new(store.clone(), "capped").max_depth(3);
    for n in 0..3 {
        queue.enqueue(format!("job {n}")).await.expect("room");
    }
    let refused = queue
        .enqueue("one too many".to_string())
        .await
        .expect_err("full");
    assert!(refused.is_full());
    assert_eq!(refused.into_inner(), "one too many");
    let held = claim(&store, "capped", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert!(
        queue.enqueue("still full".to_string()).await.is_err(),
        "running jobs count"
    );
    assert_eq!(
        store.complete(held.lease()).await.expect("complete"),
        Ack::Recorded
    );
    let batch = vec!["a".to_string(), "b".to_string()];
    let refused = queue
        .enqueue_batch(batch.clone())
        .await
        .expect_err("one slot, two jobs");
    assert_eq!(refused.into_inner(), batch, "the whole batch comes back");
    queue.enqueue("fits".to_string()).await.expect("one slot");
    assert_eq!(store.counts("capped").await.expect("counts").live(), 3);
    let uncapped = Queue::<S, String>::new(store.clone(), "capped");
    uncapped
        .enqueue("no cap asked".to_string())
        .await
        .expect("the cap is the producer's");
}

/// Cancelling a waiting job ends it; cancelling a running one revokes its lease.
pub async fn cancel_waiting_and_running<S: Store>(store: S) {
    let waiting = enqueue(&store, job("cancel", 1)).await;
    assert!(store.cancel(waiting).await.expect("cancel"));
    assert_eq!(state(&store, waiting).await, JobState::Cancelled);
    assert!(claim(&store, "cancel", 1, LONG_LEASE).await.is_empty());
    let running = enqueue(&store, job("cancel", 2)).await;
    let held = claim(&store, "cancel", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert!(store.cancel(running).await.expect("cancel"));
    assert!(
        store
            .heartbeat(&[held.lease()], LONG_LEASE)
            .await
            .expect("heartbeat")
            .is_empty(),
        "lease revoked"
    );
    assert_eq!(
        store.complete(held.lease()).await.expect("complete"),
        Ack::Stale
    );
    assert_eq!(state(&store, running).await, JobState::Cancelled);
    assert!(
        !store.cancel(running).await.expect("cancel"),
        "already ended"
    );
    assert!(
        !store
            .cancel(DurableId::new(i64::MAX))
            .await
            .expect("cancel"),
        "no such job"
    );
}

/// Dead jobs are listed with their last error and can be replayed, one or all.
pub async fn replay_dead_jobs<S: Store>(store: S) {
    let once = EnqueueOptions::new().max_attempts(1);
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = enqueue(&store, job("replay", n).with_options(once.clone())).await;
        let held = claim(&store, "replay", 1, LONG_LEASE)
            .await
            .pop()
            .expect("claim");
        assert_eq!(
            store
                .bury(held.lease(), &format!("failure {n}"))
                .await
                .expect("bury"),
            Ack::Recorded
        );
        ids.push(id);
    }
    let dead = store.dead_jobs("replay", 10).await.expect("dead jobs");
    assert_eq!(dead.len(), 3);
    assert!(
        dead.iter()
            .all(|record| record.state == JobState::Dead && record.finished_at.is_some())
    );
    assert_eq!(
        dead.iter()
            .find(|record| record.id == ids[1])
            .and_then(|r| r.last_error.clone())
            .as_deref(),
        Some("failure 1")
    );
    assert_eq!(
        store.dead_jobs("replay", 2).await.expect("dead jobs").len(),
        2,
        "limit honoured"
    );
    assert!(store.replay(ids[0]).await.expect("replay"));
    assert!(
        !store.replay(ids[0]).await.expect("replay"),
        "only dead jobs replay"
    );
    let again = claim(&store, "replay", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(
        (again.id, again.attempt),
        (ids[0], 1),
        "attempts start over"
    );
    assert_eq!(store.replay_all("replay").await.expect("replay all"), 2);
    assert_eq!(store.counts("replay").await.expect("counts").dead, 0);
}

/// A job of `queue` with `key` (if any) that ran once and was buried.
async fn dead_job<S: Store>(store: &S, queue: &str, key: Option<&str>) -> DurableId {
    let options = match key {
        Some(key) => EnqueueOptions::new().unique_key(key),
        None => EnqueueOptions::new(),
    };
    let id = enqueue(store, job(queue, 0).with_options(options)).await;
    let held = claim(store, queue, 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(held.id, id);
    assert_eq!(
        store
            .bury(held.lease(), "failed for good")
            .await
            .expect("bury"),
        Ack::Recorded
    );
    id
}

/// Two dead jobs with one unique key can be live only one at a time: a replay of the
/// queue brings back one of them (PostgreSQL and SQLite the newer, Redis the one that died
/// first) and every keyless one, the other waits for the key as a single replay would,
/// and the call succeeds every time.
pub async fn replay_all_brings_back_one_dead_job_per_unique_key<S: Store>(store: S) {
    let older = dead_job(&store, "replay-keys", Some("welcome-7")).await;
    let newer = dead_job(&store, "replay-keys", Some("welcome-7")).await;
    let keyless = dead_job(&store, "replay-keys", None).await;
    assert_eq!(
        store.replay_all("replay-keys").await.expect("replay all"),
        2
    );
    let states = [state(&store, older).await, state(&store, newer).await];
    assert!(
        states == [JobState::Dead, JobState::Available]
            || states == [JobState::Available, JobState::Dead],
        "one of the two: {states:?}"
    );
    assert_eq!(state(&store, keyless).await, JobState::Available);
    assert_eq!(
        store.replay_all("replay-keys").await.expect("replay all"),
        0
    );
    let still = [state(&store, older).await, state(&store, newer).await];
    assert_eq!(still, states, "the other still waits for the key");
}

/// A retry asked for more than any store keeps (`Duration::MAX`: a backoff of "never") is
/// recorded at the scheduling horizon and reads back, not refused, which would leave the
/// job to run again as soon as its lease ran out.
pub async fn a_retry_past_the_horizon_waits_at_it<S: Store>(store: S) {
    let id = enqueue(&store, job("horizon", 1)).await;
    let held = claim(&store, "horizon", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    let asked = SystemTime::now();
    assert_eq!(
        store
            .retry(held.lease(), Duration::MAX, "not yet")
            .await
            .expect("retry"),
        Ack::Recorded
    );
    let record = store.job(id).await.expect("job").expect("exists");
    assert_eq!(record.state, JobState::Available);
    assert_eq!(record.last_error.as_deref(), Some("not yet"));
    let ahead = record.run_at.duration_since(asked).expect("in the future");
    let slack = Duration::from_secs(3_600);
    assert!(
        ahead > crate::MAX_SCHEDULE_AHEAD - slack && ahead < crate::MAX_SCHEDULE_AHEAD + slack,
        "{ahead:?}"
    );
    let counts = store.counts("horizon").await.expect("counts");
    assert_eq!((counts.scheduled, counts.running), (1, 0), "{counts:?}");
    assert!(claim(&store, "horizon", 1, LONG_LEASE).await.is_empty());
}

/// Retention deletes old completed and cancelled jobs, and dead ones only when asked; a
/// span past every clock (`Duration::MAX`) keeps everything.
pub async fn purge_keeps_what_it_should<S: Store>(store: S) {
    let done = enqueue(&store, job("purge", 1)).await;
    let held = claim(&store, "purge", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(
        store.complete(held.lease()).await.expect("complete"),
        Ack::Recorded
    );
    let dead = enqueue(
        &store,
        job("purge", 2).with_options(EnqueueOptions::new().max_attempts(1)),
    )
    .await;
    let held = claim(&store, "purge", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    assert_eq!(
        store.bury(held.lease(), "x").await.expect("bury"),
        Ack::Recorded
    );
    let live = enqueue(&store, job("purge", 3)).await;
    assert_eq!(
        store
            .purge_finished(Duration::from_secs(3600), true)
            .await
            .expect("purge"),
        0,
        "too recent"
    );
    assert_eq!(
        store
            .purge_finished(Duration::MAX, true)
            .await
            .expect("keeping everything is no error"),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store
            .purge_finished(Duration::from_millis(1), false)
            .await
            .expect("purge"),
        1
    );
    assert!(store.job(done).await.expect("job").is_none());
    assert_eq!(
        state(&store, dead).await,
        JobState::Dead,
        "dead jobs stay for inspection"
    );
    assert_eq!(
        store
            .purge_finished(Duration::from_millis(1), true)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(
        state(&store, live).await,
        JobState::Available,
        "live jobs are never purged"
    );
}

/// The global rate limit grants a burst, then one start per interval, on the store's clock.
pub async fn global_rate_limit_is_gcra<S: Store>(store: S) {
    let rate = GlobalRate::new("kit-rate", 10, Duration::from_secs(1))
        .expect("rate")
        .burst(3)
        .expect("burst");
    let first = store.take_rate(&rate, 10).await.expect("take");
    assert_eq!(first.granted, 3, "the burst");
    let empty = store.take_rate(&rate, 1).await.expect("take");
    assert_eq!(empty.granted, 0);
    assert!(empty.retry_after > Duration::ZERO && empty.retry_after <= rate.interval());
    tokio::time::sleep(empty.retry_after + Duration::from_millis(5)).await;
    assert_eq!(
        store.take_rate(&rate, 10).await.expect("take").granted,
        1,
        "one per interval after the burst"
    );
    // Over any window, no more than rate × window + burst are granted.
    let start = Instant::now();
    let mut granted = 0;
    while start.elapsed() < Duration::from_millis(600) {
        granted += store.take_rate(&rate, 5).await.expect("take").granted;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let window = start.elapsed().as_secs_f64();
    assert!(
        f64::from(granted) <= 10.0 * window + 1.0,
        "{granted} starts in {window:.3} s at 10/s"
    );
    let other = GlobalRate::new("kit-rate-other", 1, Duration::from_secs(3600)).expect("rate");
    assert_eq!(
        store.take_rate(&other, 5).await.expect("take").granted,
        1,
        "limits are keyed by name"
    );
}

/// The global weighted limit never hands out more than its capacity; a holder's units come
/// back when it releases them or when its lease expires.
pub async fn global_units_are_bounded<S: Store>(store: S) {
    let limit = GlobalConcurrency::new("kit-units", 5).expect("limit");
    let holder = |n| Lease::new(DurableId::new(n), crate::FencingToken::new(n));
    assert!(
        store
            .acquire_units(&limit, holder(1), 3, LONG_LEASE)
            .await
            .expect("acquire")
    );
    assert!(
        store
            .acquire_units(&limit, holder(1), 3, LONG_LEASE)
            .await
            .expect("acquire"),
        "idempotent per holder"
    );
    assert!(
        !store
            .acquire_units(&limit, holder(2), 3, LONG_LEASE)
            .await
            .expect("acquire"),
        "3 + 3 > 5"
    );
    assert!(
        store
            .acquire_units(&limit, holder(3), 2, SHORT_LEASE)
            .await
            .expect("acquire"),
        "3 + 2 fits"
    );
    store
        .release_units(&limit, holder(1))
        .await
        .expect("release");
    assert!(
        store
            .acquire_units(&limit, holder(2), 3, LONG_LEASE)
            .await
            .expect("acquire")
    );
    // Holder 3 never renews: its 2 units come back when its lease runs out.
    assert!(
        !store
            .acquire_units(&limit, holder(4), 4, LONG_LEASE)
            .await
            .expect("acquire")
    );
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(100)).await;
    assert!(
        !store
            .acquire_units(&limit, holder(4), 3, LONG_LEASE)
            .await
            .expect("acquire"),
        "3 + 3 > 5"
    );
    assert!(
        store
            .acquire_units(&limit, holder(4), 2, LONG_LEASE)
            .await
            .expect("acquire"),
        "expired units are free"
    );
}

/// A store with a notification channel wakes a run waiting for units when another run
/// gives them back ([`Store::units_wakeup`]), through the same channel other processes
/// hear. Not in [`store_conformance_tests!`](crate::store_conformance_tests): a store
/// without one keeps the default, which never wakes, and its waiters poll.
///
/// # Panics
///
/// When the waiter is not woken within [`PATIENCE`](super::PATIENCE).
pub async fn released_units_wake_a_waiter<S: Store>(store: S) {
    let holder = |n| Lease::new(DurableId::new(n), crate::FencingToken::new(n));
    // First a release on a limit of its own, until it wakes its waiter: by then the
    // store's channel is up (its (re)connect wakes every waiter, this one included), so
    // the wake-up below can come from the release alone.
    let warm_up = GlobalConcurrency::new("kit-wake-warm-up", 1).expect("limit");
    let warm_up_waiter = store.units_wakeup(warm_up.key());
    let deadline = Instant::now() + super::PATIENCE;
    for n in 1.. {
        let woken = warm_up_waiter.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        assert!(
            store
                .acquire_units(&warm_up, holder(n), 1, LONG_LEASE)
                .await
                .expect("acquire")
        );
        store
            .release_units(&warm_up, holder(n))
            .await
            .expect("release");
        if tokio::time::timeout(Duration::from_millis(500), woken)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no release of units woke a waiter within {:?}",
            super::PATIENCE
        );
    }

    let limit = GlobalConcurrency::new("kit-wake-units", 1).expect("limit");
    assert!(
        store
            .acquire_units(&limit, holder(100), 1, LONG_LEASE)
            .await
            .expect("acquire")
    );
    let waiting = store.units_wakeup(limit.key());
    let woken = waiting.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    assert!(
        !store
            .acquire_units(&limit, holder(101), 1, LONG_LEASE)
            .await
            .expect("acquire"),
        "the one unit is held"
    );
    store
        .release_units(&limit, holder(100))
        .await
        .expect("release");
    tokio::time::timeout(super::PATIENCE, woken)
        .await
        .expect("the release woke the waiting run");
    assert!(
        store
            .acquire_units(&limit, holder(101), 1, LONG_LEASE)
            .await
            .expect("acquire"),
        "the woken run takes the unit"
    );
}

/// A handler's error is recorded whatever characters it holds (a NUL byte included, which
/// a store may have to replace): a run's end that could never be recorded would leave the
/// job to run again at every lease's end, its message lost.
pub async fn error_texts_of_any_characters_are_recorded<S: Store>(store: S) {
    let id = enqueue(
        &store,
        job("odd-errors", 1).with_options(EnqueueOptions::new().max_attempts(2)),
    )
    .await;
    let held = claim(&store, "odd-errors", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim");
    let retried = store.retry(held.lease(), Duration::ZERO, "nul\0byte, é, 🦀");
    assert_eq!(retried.await.expect("retry"), Ack::Recorded);
    let record = store.job(id).await.expect("job").expect("exists");
    let error = record.last_error.expect("an error");
    assert!(
        error.starts_with("nul") && error.ends_with("byte, é, 🦀"),
        "{error:?}"
    );
    let held = claim(&store, "odd-errors", 1, LONG_LEASE)
        .await
        .pop()
        .expect("claim again");
    let buried = store.bury(held.lease(), "\0");
    assert_eq!(buried.await.expect("bury"), Ack::Recorded);
    assert_eq!(state(&store, id).await, JobState::Dead);
}

/// A job scheduled past what the stores' clocks hold is refused as invalid, not stored
/// with a time that no longer reads back.
pub async fn far_future_jobs_are_refused<S: Store>(store: S) {
    for options in [
        EnqueueOptions::new().delay(Duration::MAX),
        EnqueueOptions::new().run_at(SystemTime::now() + crate::MAX_SCHEDULE_AHEAD * 2),
    ] {
        match store.enqueue(job("far", 1).with_options(options)).await {
            Err(EnqueueError::Store(_, StoreError::Invalid(_))) => {}
            other => panic!("expected an invalid enqueue, got {other:?}"),
        }
    }
    let soon_enough = EnqueueOptions::new().delay(crate::MAX_SCHEDULE_AHEAD);
    let id = enqueue(&store, job("far", 2).with_options(soon_enough)).await;
    let record = store
        .job(id)
        .await
        .expect("job reads back")
        .expect("exists");
    assert!(record.run_at > SystemTime::now() + crate::MAX_SCHEDULE_AHEAD / 2);
}
