//! Retry then dead-letter, end to end on the thread backend, with the counts in `Stats`.
#![cfg(all(feature = "retry", feature = "dead-letter-jsonl"))]

use std::sync::mpsc;
use std::time::Duration;

use brigade_core::{ErrorKind, Job, JobContext};
use brigade_middleware::{Backoff, DeadLetterQueue, JsonlSink, MemorySink, Retry};
use brigade_thread::ThreadPool;
use serde::{Deserialize, Serialize};

/// Fails its first `failures` runs, then succeeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Flaky {
    id: u32,
    failures: u32,
    runs: u32,
    /// The attempt number the pool gave the last run (pools count from 1 each).
    last_attempt: u32,
}

impl Flaky {
    fn new(id: u32, failures: u32) -> Self {
        Flaky {
            id,
            failures,
            runs: 0,
            last_attempt: 0,
        }
    }
}

impl Job for Flaky {
    type Output = u32;
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<u32, String> {
        self.runs += 1;
        self.last_attempt = cx.attempt();
        if self.runs <= self.failures {
            Err(format!("job {} failed run {}", self.id, self.runs))
        } else {
            Ok(self.id)
        }
    }
}

fn retry() -> Retry<String> {
    Retry::builder()
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(1)).cap(Duration::from_millis(5)))
        .build()
        .expect("valid retry")
}

#[test]
fn retry_then_dead_letter_counts_in_stats() {
    let sink = MemorySink::new(100).unwrap();
    let (alerts, monitor) = mpsc::channel();
    let pool = ThreadPool::<Flaky>::builder()
        .name("flaky")
        .workers(3)
        .layer(retry())
        .layer(
            DeadLetterQueue::new(sink.clone())
                .label(|job: &Flaky| format!("Job {}", job.id))
                .alerts_to(alerts),
        )
        .build()
        .unwrap();

    // id % 4 failures: 0 and 1 and 2 succeed within 3 attempts, 3 never does.
    let handles: Vec<_> = (0..40)
        .map(|id| pool.submit(Flaky::new(id, id % 4)).unwrap())
        .collect();
    let mut succeeded = 0;
    for handle in handles {
        match handle.join() {
            Ok(_) => succeeded += 1,
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::DeadLettered);
                assert_eq!(error.attempts(), 3);
            }
        }
    }
    pool.shutdown();

    let stats = pool.stats();
    assert_eq!(succeeded, 30);
    assert_eq!(stats.submitted, 40);
    assert_eq!(stats.completed, 30);
    assert_eq!(stats.dead_lettered, 10);
    assert_eq!(stats.failed, 0);
    // 10 jobs retried once, 10 twice, 10 twice before dead-lettering.
    assert_eq!(stats.retried, 10 + 2 * 10 + 2 * 10);
    assert!(stats.is_balanced(), "{stats:?}");

    let letters = sink.drain();
    assert_eq!(letters.len(), 10);
    for letter in &letters {
        assert_eq!(letter.job.id % 4, 3);
        assert_eq!(letter.job.runs, 3, "the job arrives intact, with its state");
        assert_eq!(letter.attempts, 3);
        assert_eq!(
            letter.job.last_attempt, 3,
            "the attempt number is in the context"
        );
        assert_eq!(letter.error, format!("job {} failed run 3", letter.job.id));
        assert!(letter.first_failure <= letter.last_failure);
    }
    let alerts: Vec<_> = monitor.try_iter().collect();
    assert_eq!(alerts.len(), 10);
    assert!(alerts.iter().all(|alert| alert.job.starts_with("Job ")));
}

#[test]
fn a_full_sink_gives_the_job_back_as_failed() {
    let sink = MemorySink::new(2).unwrap();
    let pool = ThreadPool::<Flaky>::builder()
        .workers(2)
        .layer(DeadLetterQueue::new(sink.clone()))
        .build()
        .unwrap();
    let handles: Vec<_> = (0..5)
        .map(|id| pool.submit(Flaky::new(id, 1)).unwrap())
        .collect();
    let kinds: Vec<_> = handles
        .into_iter()
        .map(|handle| handle.join().unwrap_err().kind())
        .collect();
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ErrorKind::DeadLettered)
            .count(),
        2
    );
    assert_eq!(kinds.iter().filter(|k| **k == ErrorKind::Failed).count(), 3);
    assert_eq!((stats.dead_lettered, stats.failed), (2, 3));
    assert_eq!(sink.refused(), 3);
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn jsonl_dead_letters_replay_into_a_fresh_pool() {
    let path = std::env::temp_dir().join(format!("brigade-mw-it-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sink = JsonlSink::<Flaky>::open(&path).unwrap();
    let pool = ThreadPool::<Flaky>::builder()
        .workers(2)
        .layer(retry())
        .layer(DeadLetterQueue::new(sink.clone()))
        .build()
        .unwrap();
    for id in 0..6 {
        // Even ids need 5 runs: more than the 3 attempts, so they are dead-lettered.
        pool.execute(Flaky::new(id, if id % 2 == 0 { 5 } else { 0 }))
            .unwrap();
    }
    pool.shutdown();
    assert_eq!(pool.stats().dead_lettered, 3);
    drop(sink);

    // A restart: the letters are on disk, with the jobs' state.
    let sink = JsonlSink::<Flaky>::open(&path).unwrap();
    assert_eq!(sink.pending(), 3);
    let fresh = ThreadPool::<Flaky>::builder()
        .workers(2)
        .layer(retry())
        .layer(DeadLetterQueue::new(sink.clone()))
        .build()
        .unwrap();
    let report = sink.replay(&fresh).unwrap();
    assert_eq!((report.replayed.len(), report.kept), (3, 0));
    // Each replayed job ran 3 times before; 2 more failures then success.
    let results: Vec<_> = report.replayed.into_iter().map(|h| h.join()).collect();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    fresh.shutdown();
    assert_eq!(sink.pending(), 0);
    assert!(std::fs::read(&path).unwrap().is_empty());
    std::fs::remove_file(&path).unwrap();
}
