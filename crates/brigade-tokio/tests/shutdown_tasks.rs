//! No task of a pool outlives its shutdown or its drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use brigade_core::hooks::{AfterRun, Middleware, RunOutcome, RunReport};
use brigade_core::{BoxAsyncJob, JobContext};
use brigade_tokio::TokioPool;
use tokio::runtime::Handle;

type Job = BoxAsyncJob<u32, String>;

/// Retries every failure once, 5 ms later, so the pool also starts its delay-queue task.
struct RetryOnce;

impl Middleware<Job, String> for RetryOnce {
    fn after_run(&self, _: &Job, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        match run.outcome {
            RunOutcome::Failed(_) if run.attempt == 1 => {
                AfterRun::RetryAt(now + Duration::from_millis(5))
            }
            _ => AfterRun::Done,
        }
    }
}

fn sleepy(n: u32) -> Job {
    BoxAsyncJob::new(move |cx: JobContext| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if n % 3 == 0 && cx.attempt() == 1 {
            return Err(format!("job {n} failed once"));
        }
        Ok(n)
    })
}

/// Waits (boundedly) until the runtime has only `baseline` tasks alive.
async fn settles_to(baseline: usize) {
    let metrics = Handle::current().metrics();
    for _ in 0..2_000 {
        if metrics.num_alive_tasks() == baseline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "{} tasks alive, {baseline} expected",
        metrics.num_alive_tasks()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_task_is_left_running_after_shutdown() {
    let baseline = Handle::current().metrics().num_alive_tasks();
    let pool = TokioPool::<Job>::builder()
        .min_workers(1)
        .max_workers(6)
        .keep_alive(Duration::from_secs(60))
        .layer(RetryOnce)
        .build()
        .unwrap();
    let mut handles = Vec::new();
    for n in 0..60 {
        handles.push(pool.submit(sleepy(n)).await.unwrap());
    }
    assert!(pool.tasks() > 1, "workers grew and the timer started");
    let report = pool.shutdown().await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(pool.tasks(), 0, "every tracked task exited");
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await, Ok(n as u32));
    }
    let stats = pool.stats();
    assert_eq!((stats.workers, stats.retried, stats.completed), (0, 20, 60));
    settles_to(baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_pool_drains_it_in_tracked_tasks() {
    let baseline = Handle::current().metrics().num_alive_tasks();
    let pool = TokioPool::<Job>::builder()
        .workers(3)
        .layer(RetryOnce)
        .build()
        .unwrap();
    let mut handles = Vec::new();
    for n in 0..30 {
        handles.push(pool.submit(sleepy(n)).await.unwrap());
    }
    let drained = pool.drained();
    drop(pool);
    tokio::time::timeout(Duration::from_secs(20), drained)
        .await
        .expect("the dropped pool drains");
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await, Ok(n as u32), "queued jobs still ran");
    }
    settles_to(baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_pool_with_its_own_runtime_inside_another_does_not_block_it() {
    let ran = Arc::new(AtomicU32::new(0));
    let pool = TokioPool::<Job>::builder()
        .own_runtime(1)
        .workers(2)
        .build()
        .unwrap();
    let mut handles = Vec::new();
    for n in 0..10 {
        let ran = Arc::clone(&ran);
        let job = BoxAsyncJob::new(move |_cx: JobContext| {
            let ran = Arc::clone(&ran);
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(n)
            }
        });
        handles.push(pool.submit(job).await.unwrap());
    }
    drop(pool);
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await, Ok(n as u32));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_shutdown_is_empty_and_submits_are_refused() {
    let pool = TokioPool::<Job>::builder().workers(1).build().unwrap();
    let handle = pool.submit(sleepy(1)).await.unwrap();
    assert!(pool.shutdown().await.is_clean());
    assert!(pool.shutdown_now().await.is_clean());
    let refused = pool.submit(sleepy(2)).await.expect_err("closed");
    assert!(matches!(refused, brigade_core::SubmitError::Closed(_)));
    assert_eq!(handle.await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_now_after_a_graceful_shutdown_given_up_still_stops_the_jobs() {
    let pool = TokioPool::<Job>::builder().workers(1).build().unwrap();
    let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let stubborn = pool
        .submit(BoxAsyncJob::new(move |cx: JobContext| {
            let started = started.clone();
            async move {
                let _ = started.send(());
                cx.token().cancelled().await;
                Err::<u32, _>("stopped".to_string())
            }
        }))
        .await
        .unwrap();
    started_rx.recv().await.unwrap();
    let queued = pool.submit(sleepy(2)).await.unwrap();
    // The caller gives up on the graceful shutdown: intake is closed, the jobs go on.
    let given_up = tokio::time::timeout(Duration::from_millis(20), pool.shutdown()).await;
    assert!(given_up.is_err());
    let report = tokio::time::timeout(Duration::from_secs(20), pool.shutdown_now())
        .await
        .expect("shutdown_now stopped the jobs the graceful one waited for");
    assert_eq!(report.unstarted.len(), 1, "the queued job came back");
    assert!(stubborn.await.unwrap_err().is_cancelled());
    assert!(queued.await.unwrap_err().kind() == brigade_core::ErrorKind::Returned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_a_handle_that_cancels_its_token_leaves_later_jobs_uncancelled() {
    let pool = TokioPool::<Job>::builder().workers(1).build().unwrap();
    pool.execute(BoxAsyncJob::new(|cx: JobContext| async move {
        cx.token().cancel();
        Ok::<u32, String>(0)
    }))
    .await
    .unwrap();
    let later = pool
        .submit(BoxAsyncJob::new(|cx: JobContext| async move {
            Ok::<u32, String>(u32::from(cx.token().is_cancelled()))
        }))
        .await
        .unwrap();
    assert_eq!(later.await, Ok(0));
    let (seen, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    pool.execute(BoxAsyncJob::new(move |cx: JobContext| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(cx.token().is_cancelled());
            Ok::<u32, String>(1)
        }
    }))
    .await
    .unwrap();
    assert!(
        !seen_rx.recv().await.unwrap(),
        "a later job without a handle starts uncancelled"
    );
    pool.shutdown().await;
}
