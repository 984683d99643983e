//! Results as streams: `map` (input order), `map_unordered` and `Completions` (completion
//! order), all bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brigade_core::{BoxAsyncJob, Completions, JobContext, MapError, SubmitError};
use brigade_tokio::TokioPool;
use futures_util::StreamExt;

type Job = BoxAsyncJob<u64, String>;

/// A job that sleeps `ms` and tracks how many such jobs run at once.
fn timed(value: u64, ms: u64, running: &Arc<(AtomicUsize, AtomicUsize)>) -> Job {
    let running = Arc::clone(running);
    BoxAsyncJob::new(move |_cx: JobContext| {
        let running = Arc::clone(&running);
        async move {
            let now = running.0.fetch_add(1, Ordering::SeqCst) + 1;
            running.1.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            running.0.fetch_sub(1, Ordering::SeqCst);
            Ok(value)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn map_keeps_input_order_and_its_limit() {
    let pool = TokioPool::<Job>::builder().workers(8).build().unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let jobs = futures_util::stream::iter(0..20u64).map(|i| timed(i, 20 - i, &running));
    let results: Vec<u64> = pool.map(jobs, 3).map(|r| r.unwrap()).collect().await;
    assert_eq!(results, (0..20).collect::<Vec<_>>());
    assert_eq!(
        running.1.load(Ordering::SeqCst),
        3,
        "at most `limit` in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn map_unordered_yields_in_completion_order() {
    let pool = TokioPool::<Job>::builder().workers(8).build().unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    // All four fit in the limit, so the shortest sleep finishes first.
    let jobs = futures_util::stream::iter([(1, 40), (2, 30), (3, 20), (4, 10)])
        .map(|(value, ms)| timed(value, ms, &running));
    let results: Vec<u64> = pool
        .map_unordered(jobs, 4)
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(results, vec![4, 3, 2, 1]);
}

#[tokio::test(start_paused = true)]
async fn completions_stream_results_as_jobs_finish() {
    let pool = TokioPool::<Job>::builder().workers(4).build().unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let mut completions = Completions::new();
    for (value, ms) in [(1, 30), (2, 10), (3, 20)] {
        completions.push(pool.submit(timed(value, ms, &running)).await.unwrap());
    }
    let order: Vec<u64> = StreamExt::map(completions, |(_, r)| r.unwrap())
        .collect()
        .await;
    assert_eq!(order, vec![2, 3, 1]);
}

#[tokio::test]
async fn map_hands_back_refused_jobs() {
    let pool = TokioPool::<Job>::builder().workers(1).build().unwrap();
    pool.shutdown().await;
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let jobs = futures_util::stream::iter([timed(1, 1, &running)]);
    let results: Vec<_> = pool.map(jobs, 2).collect().await;
    assert!(matches!(
        results.as_slice(),
        [Err(MapError::Refused(SubmitError::Closed(_)))]
    ));
}

/// `.next()` on `Completions` in async code is the async one: it waits without blocking the
/// runtime thread, so a job on the same single-threaded runtime still gets to finish. (When
/// `.next()` resolved to the blocking `Iterator::next`, this test blocked its only thread.)
#[tokio::test(flavor = "current_thread")]
async fn completions_next_in_async_code_does_not_block_the_runtime() {
    let pool = TokioPool::<Job>::builder().workers(1).build().unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let mut completions = Completions::new();
    completions.push(pool.submit(timed(7, 5, &running)).await.unwrap());
    let (_, result) = completions.next().await.expect("one result");
    assert_eq!(result.unwrap(), 7);
    assert!(completions.next().await.is_none());
}
