//! Admission decisions with a queue that retries pushed over its capacity.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::hooks::{
    Admission, AfterRun, DropReason, Middleware, QueueState, RunOutcome, RunReport,
};
use brigade_core::{BoxAsyncJob, ErrorKind, JobContext};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u32, String>;

/// Evicts the oldest queued job when the queue is full, keeping what it dropped.
#[derive(Default)]
struct EvictWhenFull(Mutex<Vec<DropReason>>);

impl Middleware<Job, String> for EvictWhenFull {
    fn admit(&self, _: &Job, queue: QueueState) -> Admission {
        if queue.is_full() {
            Admission::EvictOldest
        } else {
            Admission::Accept
        }
    }

    fn dropped(&self, _: Job, reason: DropReason) {
        self.0.lock().unwrap().push(reason);
    }
}

struct RetryQuickly;

impl Middleware<Job, String> for RetryQuickly {
    fn after_run(&self, _: &Job, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        match run.outcome {
            RunOutcome::Failed(_) if run.attempt < 3 => {
                AfterRun::RetryAt(now + Duration::from_micros(50))
            }
            _ => AfterRun::Done,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicting_from_an_overfull_queue_loses_nothing() {
    let policy = Arc::new(EvictWhenFull::default());
    let pool = TokioPool::<Job>::builder()
        .workers(2)
        .queue_capacity(4)
        .layer_shared(policy.clone())
        .layer(RetryQuickly)
        .build()
        .unwrap();
    let mut handles = Vec::new();
    for n in 0..3_000u32 {
        let job = BoxAsyncJob::new(move |_cx: JobContext| async move {
            if n % 5 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if n % 3 == 0 {
                Err("transient".to_string())
            } else {
                Ok(n)
            }
        });
        handles.push(pool.submit(job).await.unwrap());
    }
    pool.shutdown().await;
    let stats = pool.stats();
    let mut dropped = 0;
    for handle in handles {
        match handle.await {
            Err(error) if error.kind() == ErrorKind::Dropped => dropped += 1,
            Err(error) => assert_ne!(error.kind(), ErrorKind::Returned, "{error:?}"),
            Ok(_) => {}
        }
    }
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.dropped, dropped);
    assert_eq!(policy.0.lock().unwrap().len() as u64, dropped);
    assert!(dropped > 0, "the queue overflowed");
}
