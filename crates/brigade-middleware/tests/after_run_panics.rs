//! A policy that panics when it sees a run has no say, and the layers after it still see
//! the run: a retry predicate's bug does not keep a failed job from the dead-letter queue.
#![cfg(all(feature = "retry", feature = "dead-letter"))]

use std::time::Duration;

use brigade_core::{BoxJob, ErrorKind, JobContext};
use brigade_middleware::{DeadLetterQueue, MemorySink, Retry};
use brigade_thread::BoxPool;

#[test]
fn a_panicking_retry_predicate_leaves_the_job_to_the_dead_letter_queue() {
    let sink = MemorySink::new(10).expect("sink");
    let pool = BoxPool::<(), String>::builder()
        .workers(1)
        .layer(
            Retry::builder()
                .retry_if(|_| panic!("a predicate's bug"))
                .build()
                .expect("retry"),
        )
        .layer(DeadLetterQueue::new(sink.clone()))
        .build()
        .expect("pool");
    let error = pool
        .submit(BoxJob::new(|_: &JobContext| Err("boom".to_owned())))
        .expect("submit")
        .join_timeout(Duration::from_secs(30))
        .expect("the job ends")
        .expect_err("it failed");
    pool.shutdown();
    assert_eq!(error.kind(), ErrorKind::DeadLettered, "{error:?}");
    assert_eq!(
        sink.len(),
        1,
        "the failed job reached the dead-letter queue"
    );
    let stats = pool.stats();
    assert_eq!((stats.retried, stats.dead_lettered), (0, 1), "{stats:?}");
}
