//! The randomized accounting stress test: over 100,000 jobs from several producers,
//! succeeding, failing, panicking, sleeping and waiting for cancellation, with random
//! cancels, the worker range resized at random, and a `shutdown_now` at a random moment.
//! Every accepted job must end in exactly one terminal state, and the handles must agree
//! with the counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use brigade_core::testkit::Tally;
use brigade_core::{BoxAsyncJob, ErrorKind, JobContext, SubmitError};
use brigade_tokio::TokioPool;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Job = BoxAsyncJob<u64, String>;

const PRODUCERS: u64 = 4;
const JOBS_PER_PRODUCER: u64 = 30_000;
/// Shutdown comes at a random point after this many accepted jobs, so at least 100,000
/// jobs go through the pool.
const AT_LEAST: u64 = 100_000;

fn job(rng: &mut StdRng, value: u64) -> Job {
    let roll = rng.random_range(0..100);
    BoxAsyncJob::new(move |cx: JobContext| async move {
        match roll {
            0..45 => Ok(value),
            45..65 => Err(format!("job {value} failed")),
            65..68 => panic!("job {value} panicked"),
            68..88 => {
                tokio::task::yield_now().await;
                Ok(value)
            }
            88..95 => {
                tokio::time::sleep(Duration::from_micros(50)).await;
                Ok(value)
            }
            _ => {
                // Stops early when cancelled (a random cancel or the shutdown).
                tokio::select! {
                    () = cx.token().cancelled() => Err("cancelled".into()),
                    () = tokio::time::sleep(Duration::from_micros(100)) => Ok(value),
                }
            }
        }
    })
}

#[test]
fn every_job_is_accounted_for_under_random_load() {
    // Thousands of expected panics would flood the output.
    std::panic::set_hook(Box::new(|_| {}));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let seed = rand::rng().random::<u64>();
        println!("seed {seed}");
        let pool = Arc::new(
            TokioPool::<Job>::builder()
                .min_workers(2)
                .max_workers(16)
                .keep_alive(Duration::from_millis(5))
                .queue_capacity(256)
                .build()
                .unwrap(),
        );
        let accepted = Arc::new(AtomicU64::new(0));
        let stop_at = AT_LEAST + StdRng::seed_from_u64(seed).random_range(0..10_000);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let (pool, accepted) = (Arc::clone(&pool), Arc::clone(&accepted));
                tokio::spawn(async move {
                    let mut rng = StdRng::seed_from_u64(seed ^ (producer + 1));
                    let mut handles = Vec::new();
                    let mut refused = 0u64;
                    for i in 0..JOBS_PER_PRODUCER {
                        match pool.submit(job(&mut rng, producer << 32 | i)).await {
                            Ok(handle) => {
                                if rng.random_range(0..100) < 5 {
                                    handle.cancel();
                                }
                                handles.push(handle);
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(SubmitError::Closed(_)) => refused += 1,
                            Err(other) => panic!("unexpected refusal {other:?}"),
                        }
                    }
                    (handles, refused)
                })
            })
            .collect();

        // Elastic under load: the range changes every millisecond until the shutdown.
        let resizer = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                while pool.stats().submitted < stop_at {
                    let min = rng.random_range(0..4);
                    let max = rng.random_range(min.max(1)..=16);
                    pool.resize(min, max).expect("a valid range");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let reached = async {
            while accepted.load(Ordering::Relaxed) < stop_at {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(120), reached)
            .await
            .expect("the pool keeps accepting jobs");
        let report = pool.shutdown_now().await;
        resizer.await.unwrap();

        let mut tally = Tally::new();
        let mut refused = 0;
        for producer in producers {
            let (handles, producer_refused) = producer.await.unwrap();
            refused += producer_refused;
            for handle in handles {
                tally.record(&handle.await);
            }
        }
        let stats = pool.stats();
        println!("{stats:?}, refused after shutdown: {refused}");
        assert!(stats.is_balanced(), "{stats:?}");
        assert!(stats.submitted >= AT_LEAST, "{stats:?}");
        let handle_count = tally.counts().submitted;
        assert_eq!(stats.submitted, handle_count, "one handle per accepted job");
        assert_eq!(handle_count + refused, PRODUCERS * JOBS_PER_PRODUCER);
        let allowed = [
            None,
            Some(ErrorKind::Failed),
            Some(ErrorKind::Panicked),
            Some(ErrorKind::Cancelled),
            Some(ErrorKind::Returned),
        ];
        if let Err(other) = tally.only_kinds(&allowed) {
            panic!("no middleware, yet a job ended {other:?}");
        }
        tally.assert_agrees_with(&stats, "tokio stress");
        assert_eq!(report.unstarted.len() as u64, stats.returned);
        assert!(stats.panicked > 0 && stats.cancelled > 0 && stats.failed > 0);
        assert_eq!(pool.tasks(), 0, "no task outlives the shutdown");
    });
    let _ = std::panic::take_hook();
}
