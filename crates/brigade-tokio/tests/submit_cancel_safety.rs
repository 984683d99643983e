//! `submit(job).await` under `tokio::select!`: a submit that loses the race loses no job.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brigade_core::{BoxAsyncJob, JobContext};
use brigade_tokio::TokioPool;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Job = BoxAsyncJob<u64, String>;

/// A job that records its tag when it runs.
fn tagged(tag: u64, ran: &Arc<Mutex<Vec<u64>>>, pause: Duration) -> Job {
    let ran = Arc::clone(ran);
    BoxAsyncJob::new(move |_cx: JobContext| {
        let ran = Arc::clone(&ran);
        async move {
            tokio::time::sleep(pause).await;
            ran.lock().unwrap().push(tag);
            Ok(tag)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_cancelled_by_select_loses_no_job() {
    let pool = Arc::new(
        TokioPool::<Job>::builder()
            .workers(2)
            .queue_capacity(3)
            .build()
            .unwrap(),
    );
    let ran = Arc::new(Mutex::new(Vec::new()));
    let producers: Vec<_> = (0..4u64)
        .map(|producer| {
            let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                let mut abandoned = Vec::new();
                let mut rng = StdRng::seed_from_u64(producer);
                for i in 0..300 {
                    let tag = producer * 1_000 + i;
                    let pause = Duration::from_micros(rng.random_range(0..300));
                    let patience = Duration::from_micros(rng.random_range(0..400));
                    tokio::select! {
                        submitted = pool.submit(tagged(tag, &ran, pause)) => {
                            accepted.push((tag, submitted.expect("the pool is open")));
                        }
                        () = tokio::time::sleep(patience) => abandoned.push(tag),
                    }
                }
                (accepted, abandoned)
            })
        })
        .collect();

    let mut accepted = Vec::new();
    let mut abandoned = HashSet::new();
    for producer in producers {
        let (mine, gave_up) = producer.await.unwrap();
        accepted.extend(mine);
        abandoned.extend(gave_up);
    }
    assert!(
        !abandoned.is_empty(),
        "the timers must win some races for this test to mean anything"
    );
    let mut accepted_tags = HashSet::new();
    for (tag, handle) in accepted {
        assert_eq!(
            handle.await,
            Ok(tag),
            "an accepted job reaches its terminal state"
        );
        accepted_tags.insert(tag);
    }
    pool.shutdown().await;

    let ran: HashSet<u64> = ran.lock().unwrap().iter().copied().collect();
    assert_eq!(ran, accepted_tags, "exactly the accepted jobs ran");
    assert!(
        ran.is_disjoint(&abandoned),
        "an abandoned submit never runs its job"
    );
    let stats = pool.stats();
    assert_eq!(stats.submitted, accepted_tags.len() as u64);
    assert_eq!(stats.completed, accepted_tags.len() as u64);
    assert!(stats.is_balanced(), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_waiter_passes_the_room_on() {
    let pool = Arc::new(
        TokioPool::<Job>::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let release = brigade_core::CancellationToken::new();
    let started = Arc::new(AtomicUsize::new(0));
    let blocker = |release: &brigade_core::CancellationToken| {
        let (release, started) = (release.clone(), Arc::clone(&started));
        BoxAsyncJob::new(move |_cx: JobContext| {
            let (release, started) = (release.clone(), Arc::clone(&started));
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                release.cancelled().await;
                Ok(0)
            }
        })
    };
    let running = pool.submit(blocker(&release)).await.unwrap();
    while started.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let queued = pool.submit(blocker(&release)).await.unwrap();

    // Two submitters wait for room; the first gives up just as room appears, so it may be
    // woken for the room and dropped before it takes it: the wake-up must reach the second.
    let first = {
        let pool = Arc::clone(&pool);
        let job = blocker(&release);
        tokio::spawn(async move { pool.submit(job).await.map(drop) })
    };
    let ran = Arc::new(Mutex::new(Vec::new()));
    let second = {
        let pool = Arc::clone(&pool);
        let job = tagged(7, &ran, Duration::ZERO);
        tokio::spawn(async move { pool.submit(job).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    release.cancel();
    first.abort();
    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the surviving waiter is woken")
        .unwrap()
        .expect("and accepted");
    assert_eq!(second.await, Ok(7));
    assert_eq!(running.await, Ok(0));
    assert_eq!(queued.await, Ok(0));
    pool.shutdown().await;
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    assert!(matches!(stats.submitted, 3 | 4), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_submitter_waiting_on_a_full_queue_gets_in() {
    // More waiters than the queue has slots, so that the queue empties with some still
    // waiting: however the takes announce room, every waiter must hear of it.
    const WAITERS: u64 = 12;
    let pool = Arc::new(
        TokioPool::<Job>::builder()
            .workers(1)
            .queue_capacity(2)
            .build()
            .unwrap(),
    );
    let release = brigade_core::CancellationToken::new();
    let gate = {
        let release = release.clone();
        BoxAsyncJob::new(move |_cx: JobContext| {
            let release = release.clone();
            async move {
                release.cancelled().await;
                Ok(0)
            }
        })
    };
    let ran = Arc::new(Mutex::new(Vec::new()));
    let gated = pool.submit(gate).await.unwrap();
    while pool.stats().busy == 0 {
        tokio::task::yield_now().await;
    }
    let mut queued = Vec::new();
    for tag in 0..2 {
        queued.push(
            pool.submit(tagged(tag, &ran, Duration::ZERO))
                .await
                .unwrap(),
        );
    }
    let waiters: Vec<_> = (0..WAITERS)
        .map(|i| {
            let (pool, job) = (Arc::clone(&pool), tagged(100 + i, &ran, Duration::ZERO));
            tokio::spawn(async move { pool.submit(job).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    release.cancel();
    for waiter in waiters {
        let handle = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("every waiter is woken for room")
            .unwrap()
            .expect("and accepted");
        handle.await.expect("its job runs");
    }
    assert_eq!(gated.await, Ok(0));
    for handle in queued {
        handle.await.expect("queued job runs");
    }
    pool.shutdown().await;
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.completed, 3 + WAITERS);
    assert_eq!(ran.lock().unwrap().len() as u64, 2 + WAITERS);
}
