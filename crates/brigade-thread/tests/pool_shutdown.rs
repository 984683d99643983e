//! Shutdowns, their reports, `Drop`, `wait_idle`, and submits racing a shutdown.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use brigade_core::{BoxJob, CancellationToken, ErrorKind, JobContext, SubmitError};
use brigade_thread::BoxPool;
use common::{PATIENCE, eventually, returns, waits_for};

fn pool(workers: usize) -> BoxPool<u64, String> {
    BoxPool::builder()
        .name("shutdown-test")
        .workers(workers)
        .queue_capacity(64)
        .build()
        .unwrap()
}

fn sleeper(ms: u64, value: u64) -> common::Job {
    BoxJob::new(move |_: &JobContext| {
        thread::sleep(Duration::from_millis(ms));
        Ok(value)
    })
}

#[test]
fn graceful_shutdown_runs_everything_queued() {
    let pool = pool(2);
    let handles: Vec<_> = (0..20)
        .map(|i| pool.submit(sleeper(2, i)).unwrap())
        .collect();
    let report = pool.shutdown();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.finished <= 20, "{report:?}");
    assert_eq!(pool.stats().completed, 20);
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(
            handle.try_join().unwrap(),
            Ok(i as u64),
            "finished before shutdown returned"
        );
    }
    assert_eq!(pool.stats().workers, 0, "workers stopped");
    let again = pool.shutdown();
    assert!(
        again.is_clean() && again.finished == 0,
        "a second shutdown is empty"
    );
}

#[test]
fn shutdown_timeout_cancels_running_and_returns_unstarted() {
    let pool = pool(2);
    let never = CancellationToken::new();
    let running: Vec<_> = (0..2)
        .map(|i| pool.submit(waits_for(&never, i)).unwrap())
        .collect();
    eventually("both workers are busy", || pool.stats().queued == 0);
    let queued: Vec<_> = (10..15).map(|i| pool.submit(returns(i)).unwrap()).collect();
    let started = Instant::now();
    let report = pool.shutdown_timeout(Duration::from_millis(100));
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(report.deadline_passed);
    assert_eq!(report.cancelled, 2, "{report:?}");
    assert_eq!(report.unstarted.len(), 5, "{report:?}");
    assert_eq!(
        report.finished, 2,
        "the two cancelled runs finished during the shutdown"
    );
    let mut returned: Vec<u64> = report
        .unstarted
        .into_iter()
        .map(|mut job| brigade_core::Job::run(&mut job, &JobContext::detached()).unwrap())
        .collect();
    returned.sort_unstable();
    assert_eq!(
        returned,
        [10, 11, 12, 13, 14],
        "the unstarted jobs themselves come back"
    );
    for handle in running {
        assert_eq!(handle.join().unwrap_err().kind(), ErrorKind::Cancelled);
    }
    for handle in queued {
        assert!(handle.join().unwrap_err().is_returned());
    }
    let stats = pool.stats();
    assert_eq!((stats.cancelled, stats.returned), (2, 5));
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn shutdown_timeout_that_is_met_is_graceful() {
    let pool = pool(2);
    let handles: Vec<_> = (0..6)
        .map(|i| pool.submit(sleeper(5, i)).unwrap())
        .collect();
    let report = pool.shutdown_timeout(PATIENCE);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.finished, 6);
    assert!(handles.into_iter().all(|handle| handle.join().is_ok()));
}

#[test]
fn shutdown_now_hands_back_everything_unstarted_at_once() {
    let pool = pool(1);
    let never = CancellationToken::new();
    let running = pool.submit(waits_for(&never, 0)).unwrap();
    eventually("the worker is busy", || pool.stats().queued == 0);
    let queued: Vec<_> = (0..30).map(|i| pool.submit(returns(i)).unwrap()).collect();
    let report = pool.shutdown_now();
    assert_eq!(report.unstarted.len(), 30);
    assert_eq!(report.cancelled, 1);
    assert!(running.join().unwrap_err().is_cancelled());
    assert!(
        queued
            .into_iter()
            .all(|h| h.join().unwrap_err().is_returned())
    );
    let stats = pool.stats();
    assert_eq!(stats.returned, 30);
    assert!(stats.is_balanced());
}

thread_local! {
    static WITNESS: RefCell<Option<Arc<()>>> = const { RefCell::new(None) };
}

#[test]
fn dropping_the_pool_drains_it_and_joins_its_threads() {
    let witness = Arc::new(());
    let done = Arc::new(AtomicUsize::new(0));
    {
        let pool = pool(3);
        for _ in 0..30 {
            let (witness, done) = (witness.clone(), done.clone());
            pool.execute(BoxJob::new(move |_: &JobContext| {
                // Parked in the worker's thread-local: freed only when that thread exits.
                WITNESS.with(|slot| *slot.borrow_mut() = Some(witness.clone()));
                thread::sleep(Duration::from_millis(1));
                done.fetch_add(1, Ordering::SeqCst);
                Ok(0)
            }))
            .unwrap();
        }
    }
    assert_eq!(done.load(Ordering::SeqCst), 30, "drop ran everything");
    assert_eq!(
        Arc::strong_count(&witness),
        1,
        "every worker thread has exited"
    );
}

#[test]
fn wait_idle_waits_for_queued_and_running_jobs_without_shutting_down() {
    let pool = pool(2);
    pool.wait_idle(); // idle already: returns at once
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        for _ in 0..10 {
            let done = done.clone();
            pool.execute(BoxJob::new(move |_: &JobContext| {
                thread::sleep(Duration::from_millis(3));
                done.fetch_add(1, Ordering::SeqCst);
                Ok(0)
            }))
            .unwrap();
        }
        pool.wait_idle();
        let stats = pool.stats();
        assert_eq!(stats.queued + stats.busy + stats.delayed, 0, "{stats:?}");
        assert!(stats.is_balanced());
    }
    assert_eq!(done.load(Ordering::SeqCst), 30);
    assert!(pool.submit(returns(1)).is_ok(), "still open");
}

#[test]
fn submits_racing_a_shutdown_are_either_refused_with_the_job_or_finished() {
    for round in 0..20 {
        let pool = BoxPool::<u64, String>::builder()
            .workers(2)
            .queue_capacity(4)
            .build()
            .unwrap();
        let producers = 4;
        let barrier = Barrier::new(producers + 1);
        let (accepted, refused) = thread::scope(|scope| {
            let workers: Vec<_> = (0..producers)
                .map(|_| {
                    let (pool, barrier) = (&pool, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        let mut handles = Vec::new();
                        let mut refused = 0;
                        for i in 0..200 {
                            match pool.submit(returns(i)) {
                                Ok(handle) => handles.push(handle),
                                Err(SubmitError::Closed(_)) => refused += 1,
                                Err(other) => panic!("unexpected {other:?}"),
                            }
                        }
                        (handles, refused)
                    })
                })
                .collect();
            barrier.wait();
            thread::sleep(Duration::from_micros(200 * round));
            let report = if round % 2 == 0 {
                pool.shutdown()
            } else {
                pool.shutdown_now()
            };
            let mut accepted = 0u64;
            let mut refused = 0u64;
            for worker in workers {
                let (handles, r) = worker.join().unwrap();
                refused += r;
                for handle in handles {
                    let result = handle
                        .join_timeout(PATIENCE)
                        .expect("every accepted job ends");
                    assert!(result.is_ok() || result.unwrap_err().is_returned());
                    accepted += 1;
                }
            }
            assert_eq!(report.unstarted.len() as u64, pool.stats().returned);
            (accepted, refused)
        });
        assert_eq!(accepted + refused, 800);
        let stats = pool.stats();
        assert_eq!(stats.submitted, accepted, "{stats:?}");
        assert!(stats.is_balanced(), "{stats:?}");
    }
}

#[test]
fn concurrent_shutdowns_both_return_and_only_one_reports() {
    let pool = pool(2);
    for i in 0..10 {
        pool.execute(sleeper(2, i)).unwrap();
    }
    let (a, b) = thread::scope(|scope| {
        let a = scope.spawn(|| pool.shutdown().finished);
        let b = scope
            .spawn(|| pool.shutdown_now().finished + pool.shutdown_now().unstarted.len() as u64);
        (a.join().unwrap(), b.join().unwrap())
    });
    let stats = pool.stats();
    assert!(stats.is_balanced());
    assert!(a + b <= 10);
}

#[test]
fn a_job_can_wait_for_and_shut_down_its_own_pool() {
    let pool = Arc::new(pool(2));
    for i in 0..6 {
        pool.execute(sleeper(5, i)).unwrap();
    }
    let inner = pool.clone();
    let handle = pool
        .submit(BoxJob::new(move |_: &JobContext| {
            inner.wait_idle();
            let others_done = inner.stats().completed;
            let report = inner.shutdown();
            Ok(others_done + report.finished)
        }))
        .unwrap();
    let result = handle.join_timeout(PATIENCE).expect("no self-deadlock");
    assert_eq!(result, Ok(6));
    assert!(pool.submit(returns(1)).is_err());
}

#[test]
fn dropping_the_last_reference_inside_a_job_does_not_hang() {
    let pool = Arc::new(pool(2));
    let (sender, receiver) = std::sync::mpsc::channel();
    let mut inner = Some(pool.clone());
    pool.execute(BoxJob::new(move |_: &JobContext| {
        thread::sleep(Duration::from_millis(20));
        // By now the test dropped its reference: this is the pool's last one.
        drop(inner.take());
        sender.send(()).unwrap();
        Ok(0)
    }))
    .unwrap();
    drop(pool);
    receiver
        .recv_timeout(PATIENCE)
        .expect("the pool's drop inside its own job returned");
}

/// A job that waits for its token, bounded far past the test's patience.
fn waits_for_its_token(started: std::sync::mpsc::Sender<()>) -> common::Job {
    BoxJob::new(move |cx: &JobContext| {
        let _ = started.send(());
        cx.token().wait_timeout(PATIENCE * 3);
        Err("stopped".to_string())
    })
}

#[test]
fn shutdown_now_makes_room_for_a_submitter_blocked_behind_jobs_that_wait_for_their_token() {
    let pool: Arc<BoxPool<u64, String>> = Arc::new(
        BoxPool::builder()
            .name("blocked-submitter")
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let (started, started_rx) = std::sync::mpsc::channel();
    let running = pool.submit(waits_for_its_token(started)).unwrap();
    started_rx.recv_timeout(PATIENCE).expect("the job started");
    let queued = pool.submit(returns(2)).unwrap();
    let submitter = {
        let pool = Arc::clone(&pool);
        // Blocks on the full queue, inside the submit gate.
        thread::spawn(move || {
            pool.submit(returns(3))
                .map(drop)
                .map_err(|e| e.into_inner())
        })
    };
    thread::sleep(Duration::from_millis(50));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let _ = done_tx.send(pool.shutdown_now());
        });
    }
    let report = done_rx
        .recv_timeout(PATIENCE)
        .expect("shutdown_now returned: the blocked submitter got room");
    let _ = submitter.join().unwrap();
    assert!(running.join().unwrap_err().is_cancelled());
    assert_eq!(queued.join().unwrap_err().kind(), ErrorKind::Returned);
    assert!(!report.unstarted.is_empty(), "the queued job came back");
    assert!(pool.stats().is_balanced());
}

#[test]
fn shutdown_now_stops_jobs_a_graceful_shutdown_on_another_thread_waits_for() {
    let pool: Arc<BoxPool<u64, String>> = Arc::new(pool(1));
    let (started, started_rx) = std::sync::mpsc::channel();
    let running = pool.submit(waits_for_its_token(started)).unwrap();
    started_rx.recv_timeout(PATIENCE).expect("the job started");
    let queued = pool.submit(returns(2)).unwrap();
    let (graceful_tx, graceful_rx) = std::sync::mpsc::channel();
    {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let _ = graceful_tx.send(pool.shutdown());
        });
    }
    // The graceful shutdown now waits for a job that waits for its token.
    thread::sleep(Duration::from_millis(50));
    let (now_tx, now_rx) = std::sync::mpsc::channel();
    {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let _ = now_tx.send(pool.shutdown_now());
        });
    }
    now_rx
        .recv_timeout(PATIENCE)
        .expect("shutdown_now returned");
    let graceful = graceful_rx
        .recv_timeout(PATIENCE)
        .expect("the graceful shutdown returned too");
    assert!(running.join().unwrap_err().is_cancelled());
    // The queued job either ran before the stop or came back in the graceful report.
    match queued.join() {
        Ok(value) => assert_eq!(value, 2),
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::Returned);
            assert_eq!(graceful.unstarted.len(), 1);
        }
    }
    assert!(pool.stats().is_balanced());
}

#[test]
fn graceful_shutdown_turns_back_a_job_blocked_submitting_to_its_full_pool() {
    let pool = Arc::new(
        BoxPool::<u64, String>::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let inner = Arc::clone(&pool);
    let (blocking, blocked) = std::sync::mpsc::channel();
    let submitter = pool
        .submit(BoxJob::new(move |_: &JobContext| {
            // Fills the queue, which only this job's worker could empty.
            inner.execute(returns(1)).unwrap();
            blocking.send(common::current_tid()).unwrap();
            match inner.submit(returns(2)) {
                Err(SubmitError::Closed(mut job)) => {
                    // The job comes back intact.
                    let cx = JobContext::new(
                        brigade_core::JobId::new(0),
                        "test".into(),
                        CancellationToken::new(),
                    );
                    brigade_core::Job::run(&mut job, &cx)
                }
                Ok(_) => Err("accepted after the shutdown began".to_string()),
                Err(other) => Err(format!("{other:?}")),
            }
        }))
        .unwrap();
    let tid = blocked.recv_timeout(PATIENCE).unwrap();
    if let Some(tid) = tid {
        common::eventually_all_asleep("the job blocks in submit", &[tid]);
    }
    let (done, finished) = std::sync::mpsc::channel();
    let stopper = Arc::clone(&pool);
    thread::spawn(move || {
        let _ = done.send(stopper.shutdown());
    });
    let report = finished
        .recv_timeout(PATIENCE)
        .expect("the graceful shutdown turned the blocked submit back");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        report.finished, 2,
        "the submitting job and the one it queued"
    );
    assert_eq!(submitter.try_join().ok(), Some(Ok(2)), "the job came back");
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed), (2, 2), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn a_job_shutting_down_its_pool_during_another_shutdown_does_not_wait_for_it() {
    let pool = Arc::new(pool(2));
    let inner = Arc::clone(&pool);
    let go = CancellationToken::new();
    let (starting, started) = std::sync::mpsc::channel();
    let job = {
        let go = go.clone();
        pool.submit(BoxJob::new(move |_: &JobContext| {
            starting.send(()).unwrap();
            go.wait_timeout(PATIENCE);
            Ok(inner.shutdown().finished)
        }))
        .unwrap()
    };
    started.recv_timeout(PATIENCE).unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let outside = Arc::clone(&pool);
    thread::spawn(move || {
        let _ = done.send(outside.shutdown().finished);
    });
    // Intake closes under the shutdown's lock: from here the outside shutdown holds it
    // and waits for the job. Probes accepted before that run too.
    let mut probes = 0;
    eventually("the outside shutdown began", || {
        match pool.try_submit(returns(0)) {
            Err(brigade_core::TrySubmitError::Closed(_)) => true,
            Ok(_) => {
                probes += 1;
                false
            }
            Err(_) => false,
        }
    });
    go.cancel();
    assert_eq!(
        job.join_timeout(PATIENCE).ok(),
        Some(Ok(0)),
        "the job's shutdown returned at once, reporting nothing"
    );
    let finished = finished
        .recv_timeout(PATIENCE)
        .expect("the outside shutdown returned");
    // The job, and the probes that had not ended before the shutdown began.
    assert!(
        (1..=1 + probes).contains(&finished),
        "{finished} of {probes} probes"
    );
    assert!(pool.stats().is_balanced());
}
