//! Starts a rate limit (or a key of a keyed one) defers come back one at a time, one interval apart, in the order
//! they were refused, rather than all at the time the next start conforms: there, one
//! would go through and the rest would be sent back again, N(N+1)/2 start decisions for
//! N waiting jobs.
#![cfg(feature = "rate-limit")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brigade_core::hooks::{Middleware, Start};
use brigade_core::{BoxJob, JobContext};
use brigade_middleware::{KeyedRateLimit, Rate, RateLimit};
use brigade_thread::BoxPool;

/// Counts the start decisions the layers after it make.
struct CountStarts(Arc<AtomicU64>);

impl<J, E> Middleware<J, E> for CountStarts {
    fn before_start(&self, _job: &J, _now: Instant) -> Start {
        self.0.fetch_add(1, Ordering::Relaxed);
        Start::Now
    }

    fn holds_until_release(&self) -> bool {
        false
    }

    fn sees_successes(&self) -> bool {
        false
    }

    fn sees_submits(&self) -> bool {
        false
    }

    fn sets_deadlines(&self) -> bool {
        false
    }
}

#[test]
fn deferred_starts_come_back_one_interval_apart() {
    const JOBS: u64 = 200;
    let decisions = Arc::new(AtomicU64::new(0));
    let pool = BoxPool::<(), String>::builder()
        .workers(2)
        .queue_capacity(JOBS as usize)
        .layer(CountStarts(Arc::clone(&decisions)))
        .layer(
            RateLimit::builder(Rate::per_second(500))
                .build()
                .expect("limit"),
        )
        .build()
        .expect("pool");
    let handles: Vec<_> = (0..JOBS)
        .map(|_| {
            pool.submit(BoxJob::new(|_: &JobContext| Ok(())))
                .expect("submit")
        })
        .collect();
    for handle in handles {
        handle
            .join_timeout(Duration::from_secs(60))
            .expect("the job ends")
            .expect("it succeeds");
    }
    pool.shutdown();
    // Each job is asked once when a worker takes it and about once when its turn comes;
    // one the clock or a busy worker makes miss its turn asks again at the end of the
    // line. Sent back all to one time, the 200 jobs take 20,100 decisions.
    let decisions = decisions.load(Ordering::Relaxed);
    assert!(
        decisions < JOBS * 10,
        "{decisions} start decisions for {JOBS} jobs"
    );
}

#[test]
fn each_refused_start_gets_the_next_free_turn() {
    let limit = RateLimit::builder(Rate::per_second(10))
        .build()
        .expect("limit");
    let now = Instant::now();
    let interval = Duration::from_millis(100);
    assert_eq!(
        Middleware::<(), ()>::before_start(&limit, &(), now),
        Start::Now
    );
    let turns: Vec<Instant> = (0..3)
        .map(
            |_| match Middleware::<(), ()>::before_start(&limit, &(), now) {
                Start::NotBefore(at) => at,
                other => panic!("expected a deferral, got {other:?}"),
            },
        )
        .collect();
    assert_eq!(
        turns[0],
        now + interval,
        "the first waits for the next conforming time"
    );
    assert_eq!(turns[1], turns[0] + interval);
    assert_eq!(turns[2], turns[1] + interval);
    // Its turn come, the first goes through; the turns after it are still ahead.
    assert_eq!(
        Middleware::<(), ()>::before_start(&limit, &(), turns[0]),
        Start::Now
    );
    // A start refused once the handed-out turns are past waits only for the limit.
    let later = turns[2] + interval * 5;
    assert_eq!(
        Middleware::<(), ()>::before_start(&limit, &(), later),
        Start::Now
    );
    assert_eq!(
        Middleware::<(), ()>::before_start(&limit, &(), later),
        Start::NotBefore(later + interval)
    );
}

#[test]
fn a_keys_refused_starts_get_its_next_free_turns() {
    let limit = KeyedRateLimit::builder(Rate::per_second(10), |key: &u8| *key)
        .build()
        .expect("limit");
    let now = Instant::now();
    let interval = Duration::from_millis(100);
    let decide = |key: u8, at: Instant| Middleware::<u8, ()>::before_start(&limit, &key, at);
    assert_eq!(decide(1, now), Start::Now);
    assert_eq!(decide(2, now), Start::Now, "another key has its own rate");
    assert_eq!(decide(1, now), Start::NotBefore(now + interval));
    assert_eq!(decide(1, now), Start::NotBefore(now + interval * 2));
    assert_eq!(
        decide(2, now),
        Start::NotBefore(now + interval),
        "and its own turns"
    );
    assert_eq!(decide(1, now + interval), Start::Now);
}
