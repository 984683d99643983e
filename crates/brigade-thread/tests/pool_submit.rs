//! Submitting, handles, cancellation, panics and `map`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use brigade_core::hooks::{Admission, Middleware, QueueState};
use brigade_core::{
    BoxJob, CancellationToken, ErrorKind, JobContext, MapError, Rejection, SubmitError,
    SubmitTimeoutError, TrySubmitError,
};
use brigade_thread::{BoxPool, MapResult, ThreadPool};
use common::{Job, PATIENCE, eventually, fails, returns, waits_for};

fn pool(workers: usize, capacity: usize) -> BoxPool<u64, String> {
    BoxPool::builder()
        .name("submit-test")
        .workers(workers)
        .queue_capacity(capacity)
        .build()
        .unwrap()
}

/// Occupies the single worker of `pool` until `gate` opens.
fn occupy(
    pool: &BoxPool<u64, String>,
    gate: &CancellationToken,
) -> brigade_core::JobHandle<u64, String> {
    let handle = pool.submit(waits_for(gate, 0)).unwrap();
    eventually("the worker takes the job", || pool.stats().queued == 0);
    handle
}

#[test]
fn try_submit_and_submit_timeout_hand_the_job_back_when_full() {
    let pool = pool(1, 1);
    let gate = CancellationToken::new();
    let running = occupy(&pool, &gate);
    let queued = pool.try_submit(returns(1)).unwrap();
    match pool.try_submit(returns(2)) {
        Err(TrySubmitError::Full(mut job)) => {
            assert_eq!(
                brigade_core::Job::run(&mut job, &JobContext::detached()),
                Ok(2)
            );
        }
        other => panic!("expected Full, got {other:?}"),
    }
    match pool.submit_timeout(returns(3), Duration::from_millis(30)) {
        Err(SubmitTimeoutError::Timeout(mut job)) => {
            assert_eq!(
                brigade_core::Job::run(&mut job, &JobContext::detached()),
                Ok(3)
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    gate.cancel();
    assert_eq!(running.join(), Ok(0));
    assert_eq!(queued.join(), Ok(1));
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(
        stats.submitted, 2,
        "refused jobs are not submitted: {stats:?}"
    );
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn submit_blocks_while_full_then_proceeds() {
    let pool = pool(1, 1);
    let gate = CancellationToken::new();
    let running = occupy(&pool, &gate);
    let _queued = pool.submit(returns(1)).unwrap();
    let blocked = thread::scope(|scope| {
        let submitter = scope.spawn(|| pool.submit(returns(2)).unwrap().join());
        thread::sleep(Duration::from_millis(50));
        assert!(!submitter.is_finished(), "submit waits for room");
        gate.cancel();
        submitter.join().unwrap()
    });
    assert_eq!(blocked, Ok(2));
    assert_eq!(running.join(), Ok(0));
}

#[test]
fn submit_after_shutdown_is_closed_with_the_job() {
    let pool = pool(1, 4);
    let _ = pool.shutdown();
    assert!(matches!(
        pool.submit(returns(1)),
        Err(SubmitError::Closed(_))
    ));
    assert!(matches!(
        pool.try_submit(returns(1)),
        Err(TrySubmitError::Closed(_))
    ));
    assert!(matches!(
        pool.submit_timeout(returns(1), Duration::from_secs(1)),
        Err(SubmitTimeoutError::Closed(_))
    ));
    match pool.execute(returns(9)) {
        Err(error) => {
            let mut job = error.into_inner();
            assert_eq!(
                brigade_core::Job::run(&mut job, &JobContext::detached()),
                Ok(9)
            );
        }
        Ok(()) => panic!("a closed pool accepted a job"),
    }
    assert_eq!(pool.stats().submitted, 0);
}

#[test]
fn many_producers_get_every_result() {
    let pool = pool(3, 8);
    let total = AtomicUsize::new(0);
    thread::scope(|scope| {
        for producer in 0..4u64 {
            let (pool, total) = (&pool, &total);
            scope.spawn(move || {
                let handles: Vec<_> = (0..250u64)
                    .map(|i| pool.submit(returns(producer * 1000 + i)).unwrap())
                    .collect();
                for (i, handle) in handles.into_iter().enumerate() {
                    assert_eq!(handle.join(), Ok(producer * 1000 + i as u64));
                    total.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(total.load(Ordering::Relaxed), 1000);
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed), (1000, 1000));
}

#[test]
fn execute_runs_without_a_handle_and_counts_outcomes() {
    let pool = pool(2, 4);
    let ran = Arc::new(AtomicUsize::new(0));
    for i in 0..30 {
        let ran = ran.clone();
        pool.execute(BoxJob::new(move |_: &JobContext| {
            ran.fetch_add(1, Ordering::Relaxed);
            if i % 10 == 0 {
                Err("no".to_string())
            } else {
                Ok(0)
            }
        }))
        .unwrap();
    }
    pool.execute(BoxJob::new(|_: &JobContext| panic!("detached boom")))
        .unwrap();
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(ran.load(Ordering::Relaxed), 30);
    assert_eq!(
        (stats.completed, stats.failed, stats.panicked),
        (27, 3, 1),
        "{stats:?}"
    );
    assert!(stats.is_balanced());
}

#[test]
fn execute_context_carries_pool_name_id_and_attempt() {
    let pool = pool(1, 4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..3 {
        let seen = seen.clone();
        pool.execute(BoxJob::new(move |cx: &JobContext| {
            seen.lock()
                .unwrap()
                .push((cx.pool_name().to_string(), cx.id().get(), cx.attempt()));
            Ok(0)
        }))
        .unwrap();
    }
    pool.wait_idle();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let mut ids: Vec<u64> = seen.iter().map(|(_, id, _)| *id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct ids");
    assert!(
        seen.iter()
            .all(|(name, _, attempt)| name == "submit-test" && *attempt == 1)
    );
}

#[test]
fn a_job_cancelled_before_it_starts_never_runs() {
    let pool = pool(1, 4);
    let gate = CancellationToken::new();
    let running = occupy(&pool, &gate);
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = ran.clone();
    let victim = pool
        .submit(BoxJob::new(move |_: &JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(1)
        }))
        .unwrap();
    victim.cancel();
    gate.cancel();
    let error = victim.join().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    assert_eq!(error.attempts(), 0, "it never ran");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(running.join(), Ok(0));
    pool.wait_idle();
    assert_eq!(pool.stats().cancelled, 1);
}

#[test]
fn cancelling_a_running_job_reaches_it_through_its_token() {
    let pool = pool(1, 4);
    let never = CancellationToken::new();
    let handle = pool.submit(waits_for(&never, 0)).unwrap();
    eventually("the job starts", || pool.stats().queued == 0);
    handle.cancel();
    let error = handle.join().unwrap_err();
    assert!(error.is_cancelled());
    assert_eq!(error.error().map(String::as_str), Some("cancelled"));
}

#[test]
fn dropping_a_handle_neither_cancels_nor_leaks() {
    let pool = pool(1, 4);
    let witness = Arc::new(());
    let ran = Arc::new(AtomicUsize::new(0));
    {
        let (witness, ran) = (witness.clone(), ran.clone());
        let handle = pool
            .submit(BoxJob::new(move |cx: &JobContext| {
                thread::sleep(Duration::from_millis(20));
                assert!(!cx.is_cancelled());
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(Arc::strong_count(&witness) as u64)
            }))
            .unwrap();
        drop(handle);
    }
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the job still ran");
    assert_eq!(pool.stats().completed, 1);
    eventually("the job and its result are freed", || {
        Arc::strong_count(&witness) == 1
    });
}

#[test]
fn panics_become_errors_with_their_message_and_workers_survive() {
    let pool = pool(2, 16);
    let handles: Vec<_> = (0..10)
        .map(|i| {
            pool.submit(BoxJob::new(move |_: &JobContext| {
                if i % 2 == 0 {
                    panic!("job {i} exploded");
                }
                Ok(i)
            }))
            .unwrap()
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(value) => assert_eq!(value, i as u64),
            Err(error) => {
                assert!(error.is_panic());
                assert_eq!(
                    error.panic_message(),
                    Some(format!("job {i} exploded").as_str())
                );
            }
        }
    }
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.panicked, stats.completed, stats.workers), (5, 5, 2));
}

/// A value whose `Drop` panics.
struct Grenade;

impl Drop for Grenade {
    fn drop(&mut self) {
        panic!("dropped a grenade");
    }
}

#[test]
fn a_panic_dropping_an_unclaimed_output_or_the_job_is_contained_and_counted() {
    let pool: ThreadPool<BoxJob<Grenade, String>> =
        ThreadPool::builder().workers(1).build().unwrap();
    // Nobody holds the handle, so the worker drops the output: the job waits until the
    // handle is gone, or a fast worker would finish first and leave the output in the
    // handle, for this thread to drop.
    let handle_gone = CancellationToken::new();
    let gone = handle_gone.clone();
    drop(
        pool.submit(BoxJob::new(move |_: &JobContext| {
            gone.wait_timeout(Duration::from_secs(30));
            Ok(Grenade)
        }))
        .unwrap(),
    );
    handle_gone.cancel();
    pool.execute(BoxJob::new(|_: &JobContext| Ok(Grenade)))
        .unwrap();
    // The job's own captured state panics when the job is dropped after its run.
    let grenade = Grenade;
    pool.execute(BoxJob::new(move |_: &JobContext| {
        let _ = &grenade;
        Err("failed".to_string())
    }))
    .unwrap();
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(
        (stats.completed, stats.failed, stats.workers),
        (2, 1, 1),
        "{stats:?}"
    );
    assert!(stats.is_balanced());
}

#[test]
fn map_keeps_input_order_and_bounds_jobs_in_flight() {
    let pool = pool(4, 64);
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let jobs = (0..40u64).map(|i| {
        let (running, peak) = (running.clone(), peak.clone());
        BoxJob::new(move |_: &JobContext| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis((40 - i) % 3));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(i)
        })
    });
    let results: Vec<u64> = pool
        .map(jobs, 3)
        .map(|result| result.expect("accepted and ran"))
        .collect();
    assert_eq!(results, (0..40).collect::<Vec<_>>());
    assert!(peak.load(Ordering::SeqCst) <= 3, "at most 3 in flight");
}

/// Once `map` has its limit in flight it tops up in runs of a sixteenth of the limit, not
/// after every result; the counts are the iterator's pulls, whatever the timing.
#[test]
fn map_tops_up_in_runs_of_a_sixteenth_of_the_limit() {
    let pool = pool(2, 64);
    let pulled = AtomicUsize::new(0);
    let jobs = (0..200).map(|i| {
        pulled.fetch_add(1, Ordering::SeqCst);
        returns(i)
    });
    let mut results = pool.map(jobs, 64);
    let mut pulled_after = Vec::new();
    for expected in 0..6 {
        assert_eq!(results.next().map(Result::unwrap), Some(expected));
        pulled_after.push(pulled.load(Ordering::SeqCst));
    }
    assert_eq!(
        pulled_after,
        [64, 64, 64, 64, 68, 68],
        "a run of 4 once 4 are free"
    );
    assert_eq!(results.count(), 194);
    assert_eq!(pulled.load(Ordering::SeqCst), 200);
}

#[test]
fn map_with_zero_in_flight_runs_one_at_a_time() {
    let pool = pool(2, 8);
    let results: Vec<u64> = pool
        .map((0..5).map(returns), 0)
        .map(|result| result.expect("accepted and ran"))
        .collect();
    assert_eq!(results, (0..5).collect::<Vec<_>>());
    let unordered = pool.map_unordered((0..5).map(returns), 0);
    assert_eq!(unordered.filter(Result::is_ok).count(), 5);
}

#[test]
fn map_unordered_yields_in_completion_order() {
    let pool = pool(2, 8);
    let jobs: Vec<Job> = vec![
        BoxJob::new(|_: &JobContext| {
            thread::sleep(Duration::from_millis(300));
            Ok(1)
        }),
        returns(2),
        fails("three"),
    ];
    let results: Vec<_> = pool.map_unordered(jobs, 3).collect();
    assert_eq!(results.len(), 3);
    assert!(
        matches!(results.last(), Some(Ok(1))),
        "the slow job comes out last"
    );
    assert!(results.iter().any(|r| matches!(
        r,
        Err(MapError::Job(error)) if error.kind() == ErrorKind::Failed
    )));
}

/// The value a job handed back by `map` returns when run here: which job it was.
fn value_of(refused: MapError<Job, String>) -> u64 {
    let mut job = refused.into_job().expect("a refused job comes back");
    brigade_core::Job::run(&mut job, &JobContext::detached()).unwrap()
}

#[test]
fn map_on_a_closed_pool_hands_every_job_back() {
    let pool = pool(1, 4);
    let _ = pool.shutdown();
    let values: Vec<u64> = pool
        .map((0..3).map(returns), 2)
        .map(|result| match result {
            Err(refused @ MapError::Refused(SubmitError::Closed(_))) => value_of(refused),
            other => panic!("expected the job back, got {other:?}"),
        })
        .collect();
    assert_eq!(values, [0, 1, 2], "each job, in its place");
    let mut values: Vec<u64> = pool
        .map_unordered((0..4).map(returns), 2)
        .map(|result| value_of(result.expect_err("the pool is closed")))
        .collect();
    values.sort_unstable();
    assert_eq!(values, [0, 1, 2, 3]);
    assert_eq!(pool.stats().submitted, 0, "nothing was accepted");
}

/// Rejects every second job offered to it.
struct RejectEverySecond(AtomicUsize);

impl Middleware<Job, String> for RejectEverySecond {
    fn admit(&self, _: &Job, _: QueueState) -> Admission {
        if self.0.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            Admission::Reject(Rejection::new("every second"))
        } else {
            Admission::Accept
        }
    }
}

#[test]
fn map_hands_rejected_jobs_back_between_the_results() {
    let pool: BoxPool<u64, String> = ThreadPool::builder()
        .workers(2)
        .layer(RejectEverySecond(AtomicUsize::new(0)))
        .build()
        .unwrap();
    let describe = |result: MapResult<Job>| match result {
        Ok(ran) => format!("ran {ran}"),
        Err(refused @ MapError::Refused(SubmitError::Rejected(..))) => {
            format!("back {}", value_of(refused))
        }
        Err(other) => panic!("unexpected {other:?}"),
    };
    let ordered: Vec<String> = pool.map((0..4).map(returns), 2).map(describe).collect();
    assert_eq!(ordered, ["ran 0", "back 1", "ran 2", "back 3"]);
    let mut unordered: Vec<String> = pool
        .map_unordered((0..4).map(returns), 3)
        .map(describe)
        .collect();
    unordered.sort();
    assert_eq!(unordered, ["back 1", "back 3", "ran 0", "ran 2"]);
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.rejected), (4, 4));
}

/// `map` takes its results through one cell per job in flight, not a handle per job: a
/// shutdown that stops its jobs mid-run ends every turn (the running job stopped, the
/// queued ones handed back, those it had not submitted yet refused), and the run neither
/// hangs nor loses one.
#[test]
fn map_across_a_shutdown_ends_every_turn() {
    let pool = Arc::new(pool(1, 8));
    let first_started = CancellationToken::new();
    let started = first_started.clone();
    let first = BoxJob::new(move |cx: &JobContext| {
        started.cancel();
        // Holds the only worker until the shutdown below cancels the running jobs.
        cx.token().wait_timeout(PATIENCE);
        Err::<u64, _>("stopped".to_string())
    });
    let jobs = std::iter::once(first).chain((1..6).map(returns));
    let shutting = {
        let pool = Arc::clone(&pool);
        let started = first_started.clone();
        thread::spawn(move || {
            started.wait_timeout(PATIENCE);
            pool.shutdown_timeout(Duration::from_millis(10))
        })
    };
    // The shutdown may come while `map` still submits: a job it had not submitted yet is
    // refused and comes back in its turn.
    let ends: Vec<String> = pool
        .map(jobs, 8)
        .map(|result| match result {
            Err(MapError::Job(error)) => format!("{:?}", error.kind()),
            Err(MapError::Refused(SubmitError::Closed(_))) => "Refused".to_string(),
            other => panic!("expected every job stopped, handed back or refused, got {other:?}"),
        })
        .collect();
    let report = shutting.join().unwrap();
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

/// Dropping a `map` iterator early leaves its jobs running; each is counted, and its
/// result dropped with the last reference to its cell.
#[test]
fn map_dropped_early_lets_its_jobs_finish() {
    let pool = pool(2, 8);
    let mut results = pool.map((0..20).map(returns), 10);
    assert_eq!(results.next().map(|result| result.unwrap()), Some(0));
    drop(results);
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(stats.completed, 10, "the ten submitted ran: {stats:?}");
    assert!(stats.is_balanced());
}

/// An unbounded limit holds cells only for the jobs actually in flight.
#[test]
fn map_with_no_real_limit_runs_everything() {
    let pool = pool(2, 4);
    let results: Vec<u64> = pool
        .map((0..50).map(returns), usize::MAX)
        .map(|result| result.expect("accepted and ran"))
        .collect();
    assert_eq!(results, (0..50).collect::<Vec<_>>());
}

#[test]
fn handles_join_with_timeout_and_try_join() {
    let pool = pool(1, 4);
    let gate = CancellationToken::new();
    let handle = pool.submit(waits_for(&gate, 5)).unwrap();
    let handle = handle.try_join().unwrap_err();
    let handle = handle.join_timeout(Duration::from_millis(20)).unwrap_err();
    gate.cancel();
    assert_eq!(handle.join_timeout(PATIENCE).unwrap(), Ok(5));
}

#[test]
fn the_pool_is_send_and_sync_and_usable_through_the_executor_trait() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BoxPool<u64, String>>();
    assert_send_sync::<brigade_thread::Builder<common::Job>>();

    fn run_all<P: brigade_core::Executor<Job, Output = u64, Error = String>>(pool: &P) -> u64 {
        let handles: Vec<_> = (1..=4).map(|i| pool.submit(returns(i)).unwrap()).collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .sum()
    }
    let pool = pool(2, 8);
    assert_eq!(run_all(&pool), 10);
    assert!(brigade_core::Executor::shutdown(&pool).unwrap().is_clean());
}

#[test]
fn a_job_without_a_handle_that_cancels_its_token_leaves_later_jobs_uncancelled() {
    let pool = pool(1, 8);
    pool.execute(BoxJob::new(|cx: &JobContext| {
        // Stops whatever it started under its token, as the token's docs suggest.
        cx.token().cancel();
        Ok(0)
    }))
    .unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    pool.execute(BoxJob::new(move |cx: &JobContext| {
        let _ = seen_tx.send(cx.token().is_cancelled());
        Ok(1)
    }))
    .unwrap();
    let cancelled = seen_rx.recv_timeout(PATIENCE).expect("the second job ran");
    assert!(
        !cancelled,
        "the next job on the same worker starts uncancelled"
    );
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled), (2, 0), "{stats:?}");
}
