//! Retry then dead-letter, end to end on the tokio backend, with the counts in `Stats`.
#![cfg(all(feature = "retry", feature = "dead-letter-jsonl"))]

use std::time::Duration;

use brigade_core::{AsyncJob, ErrorKind, JobContext};
use brigade_middleware::{Backoff, DeadLetterQueue, JsonlSink, MemorySink, Retry};
use brigade_tokio::TokioPool;
use serde::{Deserialize, Serialize};

/// Fails its first `failures` runs, then succeeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Flaky {
    id: u32,
    failures: u32,
    runs: u32,
}

impl AsyncJob for Flaky {
    type Output = u32;
    type Error = String;

    async fn run(&mut self, _cx: &JobContext) -> Result<u32, String> {
        self.runs += 1;
        tokio::task::yield_now().await;
        if self.runs <= self.failures {
            Err(format!("job {} failed run {}", self.id, self.runs))
        } else {
            Ok(self.id)
        }
    }
}

fn flaky(id: u32, failures: u32) -> Flaky {
    Flaky {
        id,
        failures,
        runs: 0,
    }
}

fn retry() -> Retry<String> {
    Retry::builder()
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(1)).cap(Duration::from_millis(5)))
        .build()
        .expect("valid retry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_then_dead_letter_counts_in_stats() {
    let sink = MemorySink::new(100).unwrap();
    let pool = TokioPool::<Flaky>::builder()
        .workers(3)
        .layer(retry())
        .layer(DeadLetterQueue::new(sink.clone()))
        .build()
        .unwrap();
    let mut handles = Vec::new();
    for id in 0..40 {
        handles.push(pool.submit(flaky(id, id % 4)).await.unwrap());
    }
    let mut succeeded = 0;
    for handle in handles {
        match handle.await {
            Ok(_) => succeeded += 1,
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::DeadLettered);
                assert_eq!(error.attempts(), 3);
            }
        }
    }
    pool.shutdown().await;
    let stats = pool.stats();
    assert_eq!(succeeded, 30);
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.dead_lettered,
            stats.failed
        ),
        (40, 30, 10, 0)
    );
    assert_eq!(stats.retried, 10 + 2 * 10 + 2 * 10);
    assert!(stats.is_balanced(), "{stats:?}");
    let letters = sink.drain();
    assert_eq!(letters.len(), 10);
    assert!(
        letters
            .iter()
            .all(|l| l.job.id % 4 == 3 && l.job.runs == 3 && l.attempts == 3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_dead_letters_replay_into_a_fresh_tokio_pool() {
    let path = std::env::temp_dir().join(format!("brigade-mw-tokio-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sink = JsonlSink::<Flaky>::open(&path).unwrap();
    let pool = TokioPool::<Flaky>::builder()
        .workers(2)
        .layer(retry())
        .layer(DeadLetterQueue::new(sink.clone()))
        .build()
        .unwrap();
    for id in 0..6 {
        pool.execute(flaky(id, if id % 2 == 0 { 5 } else { 0 }))
            .await
            .unwrap();
    }
    pool.shutdown().await;
    assert_eq!(pool.stats().dead_lettered, 3);

    let fresh = TokioPool::<Flaky>::builder()
        .workers(2)
        .layer(retry())
        .build()
        .unwrap();
    let sink = JsonlSink::<Flaky>::open(&path).unwrap();
    // Straight from async code, into a pool on this very runtime: the blocking submits go
    // through `block_in_place`, so the runtime's other worker runs the pool meanwhile.
    // (They used to panic here: "Cannot start a runtime from within a runtime".)
    let report = sink.replay(&fresh).unwrap();
    assert_eq!((report.kept, sink.pending()), (0, 0));
    let mut results = Vec::new();
    for handle in report.replayed {
        results.push(handle.await);
    }
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    std::fs::remove_file(&path).unwrap();
}

/// On a current-thread runtime nothing could run the pool while a blocking submit waits:
/// the submit hands the job back as a typed error instead of panicking, and the replay
/// keeps every letter for an attempt from a thread that may block.
#[tokio::test(flavor = "current_thread")]
async fn a_replay_on_a_current_thread_runtime_keeps_the_letters() {
    let path =
        std::env::temp_dir().join(format!("brigade-mw-tokio-ct-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sink = JsonlSink::<Flaky>::open(&path).unwrap();
    let pool = TokioPool::<Flaky>::builder()
        .workers(1)
        .layer(DeadLetterQueue::new(sink.clone()))
        .build()
        .unwrap();
    pool.execute(flaky(1, 1)).await.unwrap();
    pool.wait_idle().await;
    assert_eq!(sink.pending(), 1);

    let refused = brigade_core::Executor::submit(&pool, flaky(2, 0)).unwrap_err();
    assert!(
        matches!(refused, brigade_core::SubmitError::InAsyncContext(_)),
        "{refused:?}"
    );
    assert_eq!(refused.into_inner().id, 2, "the job comes back");

    let report = sink.replay(&pool).unwrap();
    assert!(
        report.in_async_context && report.replayed.is_empty(),
        "stopped early"
    );
    assert_eq!((report.kept, sink.pending()), (1, 1));
    pool.shutdown().await;
    std::fs::remove_file(&path).unwrap();
}
