//! Retry then dead-letter, end to end on the tokio backend, with the counts in `Stats`.
#![cfg(all(feature = "retry", feature = "dead-letter"))]

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

#[async_trait::async_trait]
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
        .own_runtime(1)
        .workers(2)
        .layer(retry())
        .build()
        .unwrap();
    let sink = JsonlSink::<Flaky>::open(&path).unwrap();
    // `replay` submits through the blocking `Executor` methods: off the runtime's threads.
    let report = tokio::task::spawn_blocking(move || {
        let report = sink.replay(&fresh).unwrap();
        let results: Vec<_> = report.replayed.into_iter().map(|h| h.join()).collect();
        (results, report.kept, sink.pending())
    })
    .await
    .unwrap();
    let (results, kept, pending) = report;
    assert_eq!((results.len(), kept, pending), (3, 0, 0));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    std::fs::remove_file(&path).unwrap();
}
