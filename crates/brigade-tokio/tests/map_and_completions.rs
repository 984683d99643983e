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

/// Sends five jobs one at a time, each only after the last one's result came out of
/// `results`: a stream that waited for its input before yielding would never see the next.
async fn feed_one_per_result(
    results: &mut (impl futures_core::Stream<Item = Result<u64, MapError<Job, String>>> + Unpin),
    send: &tokio::sync::mpsc::Sender<Job>,
    running: &Arc<(AtomicUsize, AtomicUsize)>,
) {
    for turn in 0..5u64 {
        send.send(timed(turn, 1, running)).await.unwrap();
        let result = tokio::time::timeout(Duration::from_secs(30), results.next())
            .await
            .expect("the result came while the input waited");
        assert_eq!(result.unwrap().unwrap(), turn);
    }
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

/// Once `map` has its limit in flight it tops up in runs of a sixteenth of the limit, not
/// after every result; the counts are the input's pulls, whatever the timing.
#[tokio::test]
async fn map_tops_up_in_runs_of_a_sixteenth_of_the_limit() {
    let pool = TokioPool::<Job>::builder()
        .workers(2)
        .queue_capacity(64)
        .build()
        .unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&pulled);
    let jobs = futures_util::stream::iter(0..200u64).map(move |i| {
        counted.fetch_add(1, Ordering::SeqCst);
        BoxAsyncJob::new(move |_cx: JobContext| async move { Ok::<_, String>(i) })
    });
    let mut results = Box::pin(pool.map(jobs, 64));
    let mut pulled_after = Vec::new();
    for expected in 0..6 {
        assert_eq!(results.next().await.map(Result::unwrap), Some(expected));
        pulled_after.push(pulled.load(Ordering::SeqCst));
    }
    assert_eq!(
        pulled_after,
        [64, 64, 64, 64, 68, 68],
        "a run of 4 once 4 are free"
    );
    assert_eq!(results.count().await, 194);
    assert_eq!(pulled.load(Ordering::SeqCst), 200);
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

/// A queue of one slot behind one worker makes `map` wait for room job after job: every
/// job still runs once, in its turn, with nothing lost or reordered.
#[tokio::test]
async fn map_through_a_full_queue_keeps_every_turn() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let jobs = futures_util::stream::iter(0..200u64).map(|i| timed(i, 0, &running));
    let results: Vec<u64> = pool.map(jobs, 16).map(|r| r.unwrap()).collect().await;
    assert_eq!(results, (0..200).collect::<Vec<_>>());
    let stats = pool.stats();
    assert_eq!(stats.completed, 200);
    assert!(stats.is_balanced());
}

/// `map` yields a finished job's result while its input has nothing ready: a caller that
/// sends the next job only after it saw the last result does not wait forever.
#[tokio::test]
async fn map_yields_results_while_its_input_waits() {
    let pool = TokioPool::<Job>::builder().workers(2).build().unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let (send, mut receive) = tokio::sync::mpsc::channel::<Job>(1);
    let jobs = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
    let mut results = Box::pin(pool.map(jobs, 4));
    feed_one_per_result(&mut results, &send, &running).await;
    drop(send);
    assert!(results.next().await.is_none());
}

/// A shutdown that stops `map`'s jobs mid-run ends every turn: the running job stopped,
/// the queued ones handed back, those not submitted yet refused; none is lost and the run
/// does not hang.
#[tokio::test]
async fn map_across_a_shutdown_ends_every_turn() {
    let pool = Arc::new(TokioPool::<Job>::builder().workers(1).build().unwrap());
    let first_started = Arc::new(tokio::sync::Notify::new());
    let started = Arc::clone(&first_started);
    let first: Job = BoxAsyncJob::new(move |cx: JobContext| {
        let started = Arc::clone(&started);
        async move {
            started.notify_one();
            // Holds the only worker until the shutdown below cancels the running jobs.
            cx.token().cancelled().await;
            Err::<u64, _>("stopped".to_string())
        }
    });
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let rest: Vec<Job> = (1..6).map(|i| timed(i, 0, &running)).collect();
    let jobs = futures_util::stream::iter(std::iter::once(first).chain(rest));
    let shutting = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            first_started.notified().await;
            pool.shutdown_timeout(Duration::from_millis(10)).await
        })
    };
    let ends: Vec<String> = pool
        .map(jobs, 8)
        .map(|result| match result {
            Err(MapError::Job(error)) => format!("{:?}", error.kind()),
            Err(MapError::Refused(SubmitError::Closed(_))) => "Refused".to_string(),
            other => panic!("expected every job stopped, handed back or refused, got {other:?}"),
        })
        .collect()
        .await;
    let report = shutting.await.unwrap();
    assert_eq!(ends.len(), 6, "one result per job: {ends:?}");
    assert_eq!(ends[0], "Cancelled", "the running job was stopped");
    let handed_back = ends.iter().filter(|end| *end == "Returned").count();
    let refused = ends.iter().filter(|end| *end == "Refused").count();
    assert_eq!(handed_back + refused, 5, "{ends:?}");
    assert_eq!(
        report.unstarted.len(),
        handed_back,
        "the unstarted jobs come back"
    );
    assert!(pool.stats().is_balanced());
}

/// Dropping a `map` stream early leaves the jobs it submitted running; each is counted.
#[tokio::test]
async fn map_dropped_early_lets_its_jobs_finish() {
    let pool = TokioPool::<Job>::builder().workers(2).build().unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let jobs = futures_util::stream::iter(0..20u64).map(|i| timed(i, 1, &running));
    let mut results = Box::pin(pool.map(jobs, 10));
    assert_eq!(results.next().await.map(|r| r.unwrap()), Some(0));
    drop(results);
    pool.wait_idle().await;
    let stats = pool.stats();
    assert_eq!(stats.completed, 10, "the ten submitted ran: {stats:?}");
    assert!(stats.is_balanced());
}

/// `map_unordered` through a queue of one slot: every job runs once and comes out once.
#[tokio::test]
async fn map_unordered_through_a_full_queue_yields_every_job_once() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let jobs = futures_util::stream::iter(0..200u64).map(|i| timed(i, 0, &running));
    let mut results: Vec<u64> = pool
        .map_unordered(jobs, 16)
        .map(|r| r.unwrap())
        .collect()
        .await;
    results.sort_unstable();
    assert_eq!(results, (0..200).collect::<Vec<_>>());
    assert!(pool.stats().is_balanced());
}

/// `map_unordered` yields a finished job's result while its input has nothing ready, and
/// a job offered after a shutdown comes back refused, with the job.
#[tokio::test]
async fn map_unordered_yields_while_its_input_waits_and_hands_back_refusals() {
    let pool = TokioPool::<Job>::builder().workers(2).build().unwrap();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let (send, mut receive) = tokio::sync::mpsc::channel::<Job>(1);
    let jobs = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
    let mut results = Box::pin(pool.map_unordered(jobs, 4));
    feed_one_per_result(&mut results, &send, &running).await;
    pool.shutdown().await;
    send.send(timed(9, 1, &running)).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(30), results.next())
        .await
        .expect("the refusal came");
    assert!(matches!(
        refused,
        Some(Err(MapError::Refused(SubmitError::Closed(_))))
    ));
    drop(send);
    assert!(results.next().await.is_none());
}
