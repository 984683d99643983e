//! Extreme but valid delays saturate instead of panicking inside a pool, and a job whose
//! retry lies past what `Instant` can hold is still in the books: it waits, and a shutdown
//! hands it back.
#![cfg(feature = "retry")]

use std::time::Duration;

use brigade_core::{BoxAsyncJob, BoxJob, ErrorKind, JobContext};
use brigade_middleware::{Backoff, Jitter, Retry};
use brigade_thread::ThreadPool;
use brigade_tokio::TokioPool;

fn forever_retry(jitter: Jitter) -> Retry<String> {
    Retry::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::MAX).jitter(jitter))
        .build()
        .expect("a huge backoff is valid")
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_retry_at_duration_max_waits_on_threads_and_comes_back_in_the_report() {
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let pool = ThreadPool::<BoxJob<u32, String>>::builder()
            .workers(1)
            .layer(forever_retry(jitter))
            .build()
            .unwrap();
        let handle = pool
            .submit(BoxJob::new(|_: &JobContext| Err("down".to_string())))
            .unwrap();
        wait_until("the retry is scheduled", || pool.stats().delayed == 1);
        let report = pool.shutdown_now();
        assert_eq!(report.unstarted.len(), 1, "{jitter:?}: the job came back");
        let error = handle.join().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Returned, "{jitter:?}");
        let stats = pool.stats();
        assert_eq!((stats.retried, stats.returned), (1, 1), "{stats:?}");
        assert!(stats.is_balanced(), "{stats:?}");
    }
}

#[test]
fn a_retry_at_duration_max_waits_on_tokio_and_comes_back_in_the_report() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = TokioPool::<BoxAsyncJob<u32, String>>::builder()
            .workers(1)
            .layer(forever_retry(Jitter::Equal))
            .build()
            .unwrap();
        let handle = pool
            .submit(BoxAsyncJob::new(|_cx: JobContext| async {
                Err("down".to_string())
            }))
            .await
            .unwrap();
        for _ in 0..20_000 {
            if pool.stats().delayed == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool.stats().delayed, 1, "{:?}", pool.stats());
        let report = pool.shutdown_now().await;
        assert_eq!(report.unstarted.len(), 1, "the job came back");
        assert_eq!(handle.await.unwrap_err().kind(), ErrorKind::Returned);
        let stats = pool.stats();
        assert!(stats.is_balanced(), "{stats:?}");
    });
}

#[test]
fn the_retry_delay_saturates_for_every_jitter() {
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let backoff = Backoff::exponential(Duration::from_secs(1))
            .cap(Duration::MAX)
            .factor(1e300)
            .jitter(jitter);
        for attempt in [1, 2, 3, 50, u32::MAX] {
            for seed in 0..50 {
                let _ = backoff.delay(attempt, seed);
            }
        }
    }
}
