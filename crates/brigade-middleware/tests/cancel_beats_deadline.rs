//! A job its caller cancelled is never retried or dead-lettered, even when its run also
//! outlived its deadline: the cancel decides, and the job ends `Cancelled`.
#![cfg(all(feature = "retry", feature = "dead-letter", feature = "timeout"))]

use std::sync::mpsc;
use std::time::Duration;

use brigade_core::{BoxJob, ErrorKind, JobContext, JobError};
use brigade_middleware::{Backoff, DeadLetterQueue, MemorySink, Retry, Timeout};
use brigade_thread::BoxPool;

const DEADLINE: Duration = Duration::from_millis(50);

/// A job that says it started, waits until its caller has cancelled it, then runs past its
/// deadline before it returns an error: a cancelled run that is also late.
fn cancelled_and_late(
    started: mpsc::Sender<()>,
    cancelled: mpsc::Receiver<()>,
) -> BoxJob<(), String> {
    BoxJob::new(move |_: &JobContext| {
        started.send(()).expect("the test waits");
        cancelled.recv().expect("the test cancels");
        std::thread::sleep(DEADLINE * 2);
        Err("stopped".to_owned())
    })
}

/// Submits that job to `pool`, cancels it once it runs, and waits for its error.
fn cancel_while_running(pool: &BoxPool<(), String>) -> JobError<String> {
    let (started, has_started) = mpsc::channel();
    let (cancelled, was_cancelled) = mpsc::channel();
    let handle = pool
        .submit(cancelled_and_late(started, was_cancelled))
        .expect("submit");
    has_started.recv().expect("the job starts");
    handle.cancel();
    cancelled.send(()).expect("the job waits");
    handle
        .join_timeout(Duration::from_secs(30))
        .expect("the job ends")
        .expect_err("it failed")
}

#[test]
fn a_cancelled_run_past_its_deadline_is_not_retried() {
    let pool = BoxPool::<(), String>::builder()
        .workers(1)
        .layer(Timeout::after(DEADLINE).expect("timeout"))
        .layer(
            Retry::builder()
                .max_attempts(3)
                .backoff(Backoff::constant(Duration::from_millis(1)))
                .build()
                .expect("retry"),
        )
        .build()
        .expect("pool");
    let error = cancel_while_running(&pool);
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error:?}");
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!((stats.retried, stats.cancelled), (0, 1), "{stats:?}");
}

#[test]
fn a_cancelled_run_past_its_deadline_is_not_dead_lettered() {
    let sink = MemorySink::new(10).expect("sink");
    let pool = BoxPool::<(), String>::builder()
        .workers(1)
        .layer(Timeout::after(DEADLINE).expect("timeout"))
        .layer(DeadLetterQueue::new(sink.clone()))
        .build()
        .expect("pool");
    let error = cancel_while_running(&pool);
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error:?}");
    pool.shutdown();
    assert_eq!(sink.len(), 0, "a cancelled job was dead-lettered");
}
