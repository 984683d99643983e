//! The user callbacks of a dead-letter layer, its label and its alert, cannot lose a
//! letter: one that panics leaves the letter stored and the job dead-lettered.
#![cfg(feature = "dead-letter")]

use std::sync::mpsc;

use brigade_core::{BoxJob, ErrorKind, JobContext};
use brigade_middleware::{DeadLetterQueue, MemorySink};
use brigade_thread::BoxPool;

type Pool = BoxPool<(), String>;

fn failing_job() -> BoxJob<(), String> {
    BoxJob::new(|_: &JobContext| Err("boom".to_string()))
}

#[test]
fn a_panicking_label_keeps_the_letter_and_the_alert_names_the_job_by_id() {
    let sink = MemorySink::new(10).unwrap();
    let (alerts, monitor) = mpsc::channel();
    let pool: Pool = BoxPool::builder()
        .workers(1)
        .layer(
            DeadLetterQueue::new(sink.clone())
                .label(|_: &BoxJob<(), String>| panic!("label bug"))
                .alerts_to(alerts),
        )
        .build()
        .unwrap();
    let handle = pool.submit(failing_job()).unwrap();
    let id = handle.id();
    let error = handle.join().unwrap_err();
    pool.shutdown();

    assert_eq!(error.kind(), ErrorKind::DeadLettered);
    assert_eq!(
        sink.len(),
        1,
        "the letter was lost because the label panicked"
    );
    let stats = pool.stats();
    assert_eq!((stats.dead_lettered, stats.failed), (1, 0), "{stats:?}");
    let alert = monitor.try_recv().expect("the alert still goes out");
    assert_eq!(alert.job, id.to_string());
}

#[test]
fn a_panicking_alert_keeps_the_letter() {
    let sink = MemorySink::new(10).unwrap();
    let pool: Pool = BoxPool::builder()
        .workers(1)
        .layer(
            DeadLetterQueue::new(sink.clone())
                .label(|_: &BoxJob<(), String>| "a job".to_string())
                .on_alert(|_| panic!("pager down")),
        )
        .build()
        .unwrap();
    let error = pool.submit(failing_job()).unwrap().join().unwrap_err();
    pool.shutdown();

    assert_eq!(error.kind(), ErrorKind::DeadLettered);
    assert_eq!(sink.len(), 1);
    assert_eq!(pool.stats().dead_lettered, 1);
}
