//! Middleware decisions carried out on tokio's clock: a paused test clock drives retries,
//! deferred starts and deadlines, and a job waiting for its time holds no worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use brigade_core::hooks::{AfterRun, Middleware, RunOutcome, RunReport, Start};
use brigade_core::{BoxAsyncJob, ErrorKind, JobContext};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u32, String>;

const HOUR: Duration = Duration::from_secs(3600);

struct RetryAfterAnHour;

impl Middleware<Job, String> for RetryAfterAnHour {
    fn after_run(&self, _: &Job, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        match run.outcome {
            RunOutcome::Failed(_) if run.attempt < 3 => AfterRun::RetryAt(now + HOUR),
            _ => AfterRun::Done,
        }
    }
}

fn fails_until(attempt: u32) -> Job {
    BoxAsyncJob::new(move |cx: JobContext| async move {
        if cx.attempt() < attempt {
            Err(format!("attempt {} failed", cx.attempt()))
        } else {
            Ok(cx.attempt())
        }
    })
}

#[tokio::test(start_paused = true)]
async fn retries_wait_on_tokio_time_without_holding_a_worker() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .layer(RetryAfterAnHour)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let flaky = pool.submit(fails_until(3)).await.unwrap();
    // Let the only worker run the first attempt, which fails and goes to the delay queue.
    while pool.stats().delayed == 0 {
        tokio::task::yield_now().await;
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.busy, stats.delayed, stats.retried),
        (0, 1, 1),
        "{stats:?}"
    );

    // The single worker is free for other jobs while the retry waits its hour.
    let other = pool.submit(fails_until(1)).await.unwrap();
    assert_eq!(other.await, Ok(1));
    assert!(!flaky.is_finished());
    assert!(start.elapsed() < HOUR, "nothing waited for the backoff yet");

    // The paused clock jumps to each retry time.
    assert_eq!(flaky.await, Ok(3));
    assert!(
        start.elapsed() >= 2 * HOUR,
        "two backoffs of an hour on tokio's clock"
    );
    let stats = pool.stats();
    assert_eq!((stats.retried, stats.completed), (2, 2), "{stats:?}");
    assert!(pool.shutdown().await.is_clean());
}

struct DeferFirstStart(AtomicU32);

impl Middleware<Job, String> for DeferFirstStart {
    fn before_start(&self, _: &Job, now: Instant) -> Start {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            Start::NotBefore(now + HOUR)
        } else {
            Start::Now
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_deferred_start_lets_later_jobs_run_first() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .layer(DeferFirstStart(AtomicU32::new(0)))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let deferred = pool.submit(fails_until(1)).await.unwrap();
    let next = pool.submit(fails_until(1)).await.unwrap();
    assert_eq!(next.await, Ok(1));
    assert!(
        !deferred.is_finished(),
        "the deferred job waits for its time"
    );
    assert_eq!(deferred.await, Ok(1));
    assert!(start.elapsed() >= HOUR);
    assert!(pool.shutdown().await.is_clean());
}

struct DeadlineInAnHour;

impl Middleware<Job, String> for DeadlineInAnHour {
    fn deadline(&self, _: &Job, started: Instant) -> Option<Instant> {
        Some(started + HOUR)
    }
}

#[tokio::test(start_paused = true)]
async fn a_deadline_cancels_the_job_token_on_tokio_time() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .layer(DeadlineInAnHour)
        .build()
        .unwrap();
    let seen_deadline = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&seen_deadline);
    let stubborn = BoxAsyncJob::new(move |cx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            if cx.deadline().is_some() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            cx.token().cancelled().await;
            Err::<u32, _>("gave up".to_string())
        }
    });
    let start = tokio::time::Instant::now();
    let error = pool.submit(stubborn).await.unwrap().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut);
    assert_eq!(error.error().map(String::as_str), Some("gave up"));
    assert!(start.elapsed() >= HOUR);
    assert_eq!(
        seen_deadline.load(Ordering::SeqCst),
        1,
        "the context carries the deadline"
    );
    assert_eq!(pool.stats().timed_out, 1);
    pool.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_graceful_shutdown_waits_for_delayed_retries() {
    let pool = TokioPool::<Job>::builder()
        .workers(2)
        .layer(RetryAfterAnHour)
        .build()
        .unwrap();
    let handles: Vec<_> = {
        let mut handles = Vec::new();
        for _ in 0..4 {
            handles.push(pool.submit(fails_until(2)).await.unwrap());
        }
        handles
    };
    assert!(pool.shutdown().await.is_clean());
    for handle in handles {
        assert_eq!(handle.await, Ok(2));
    }
    assert_eq!(pool.tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_now_hands_back_jobs_waiting_for_a_retry() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .layer(RetryAfterAnHour)
        .build()
        .unwrap();
    let handle = pool.submit(fails_until(3)).await.unwrap();
    while pool.stats().delayed == 0 {
        tokio::task::yield_now().await;
    }
    let report = pool.shutdown_now().await;
    assert_eq!(report.unstarted.len(), 1, "{report:?}");
    let error = handle.await.unwrap_err();
    assert!(error.is_returned());
    assert_eq!(error.attempts(), 1, "it had run once");
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
}

/// Retries a run that timed out, once.
struct RetryTimeouts;

impl Middleware<Job, String> for RetryTimeouts {
    fn after_run(&self, _: &Job, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        match run.outcome {
            RunOutcome::TimedOut(_) if run.attempt == 1 => AfterRun::RetryAt(now + HOUR),
            _ => AfterRun::Done,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_a_timeout_starts_with_a_fresh_token() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .layer(DeadlineInAnHour)
        .layer(RetryTimeouts)
        .build()
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&runs);
    let stubborn = BoxAsyncJob::new(move |cx: JobContext| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            assert!(!cx.is_cancelled(), "each run starts with a live token");
            cx.token().cancelled().await;
            Err::<u32, _>("gave up".to_string())
        }
    });
    let error = pool.submit(stubborn).await.unwrap().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{error:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let stats = pool.stats();
    assert_eq!((stats.timed_out, stats.retried), (1, 1), "{stats:?}");
    pool.shutdown().await;
}
