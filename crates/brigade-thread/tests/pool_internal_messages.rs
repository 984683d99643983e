//! Wake-ups and stop messages are the pool's own business: they never show in `Stats`,
//! never take a slot of the bounded queue, and never make admission see it fuller than it is.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use brigade_core::hooks::{AfterRun, Middleware, QueueState, RunReport};
use brigade_core::{BoxJob, CancellationToken, JobContext, TrySubmitError};
use brigade_thread::BoxPool;
use common::{Job, eventually, returns, waits_for};

#[test]
fn resize_does_not_count_its_wake_ups_as_queued_jobs() {
    let pool = BoxPool::<u64, String>::builder()
        .workers(6)
        .queue_capacity(10)
        .build()
        .unwrap();
    let gate = CancellationToken::new();
    let running: Vec<_> = (0..6)
        .map(|i| pool.submit(waits_for(&gate, i)).unwrap())
        .collect();
    eventually("six jobs run", || pool.stats().busy == 6);
    let queued: Vec<_> = (0..4)
        .map(|i| pool.submit(waits_for(&gate, 10 + i)).unwrap())
        .collect();
    pool.resize(4, 4).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.busy, stats.queued), (6, 4), "{stats:?}");
    // The wake-ups took no slot: the queue still holds capacity minus four more jobs.
    let more: Vec<_> = (0..6)
        .map(|i| {
            pool.try_submit(waits_for(&gate, 20 + i))
                .expect("room left")
        })
        .collect();
    assert!(matches!(
        pool.try_submit(returns(99)),
        Err(TrySubmitError::Full(_))
    ));
    gate.cancel();
    for handle in running.into_iter().chain(queued).chain(more) {
        assert!(handle.join().is_ok());
    }
    pool.wait_idle();
    assert!(pool.stats().is_balanced());
}

#[test]
fn a_shrunk_pool_reports_its_running_jobs_while_the_wake_up_would_wait() {
    // Three running, five queued, then resize(2, 2): one worker retires as its job ends;
    // the two others keep running, and the five jobs still wait.
    let pool = BoxPool::<u64, String>::builder()
        .workers(3)
        .queue_capacity(10)
        .build()
        .unwrap();
    let gates: Vec<CancellationToken> = (0..8).map(|_| CancellationToken::new()).collect();
    let mut handles = Vec::new();
    for (i, gate) in gates.iter().enumerate() {
        handles.push(pool.submit(waits_for(gate, i as u64)).unwrap());
        if i == 2 {
            eventually("three jobs run", || pool.stats().busy == 3);
        }
    }
    pool.resize(2, 2).unwrap();
    gates[0].cancel();
    eventually("one worker retired", || pool.stats().workers == 2);
    eventually("the first job is counted", || pool.stats().completed == 1);
    let stats = pool.stats();
    assert_eq!((stats.busy, stats.queued), (2, 5), "{stats:?}");
    for gate in &gates {
        gate.cancel();
    }
    for handle in handles {
        assert!(handle.join().is_ok());
    }
}

/// Retries every failed run after `backoff`.
struct RetryAfter(Duration);

impl Middleware<Job, String> for RetryAfter {
    fn after_run(&self, _: &Job, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        if run.outcome.is_success() || run.attempt > 1 {
            AfterRun::Done
        } else {
            AfterRun::RetryAt(now + self.0)
        }
    }
}

/// Records the queue length admission sees.
struct SeesQueue(std::sync::Arc<std::sync::Mutex<Vec<usize>>>);

impl Middleware<Job, String> for SeesQueue {
    fn admit(&self, _: &Job, queue: QueueState) -> brigade_core::hooks::Admission {
        self.0.lock().unwrap().push(queue.len);
        brigade_core::hooks::Admission::Accept
    }
}

#[test]
fn a_retry_coming_back_takes_no_slot_of_the_ready_queue() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let pool = BoxPool::<u64, String>::builder()
        .workers(1)
        .queue_capacity(3)
        .layer(SeesQueue(seen.clone()))
        .layer(RetryAfter(Duration::from_millis(1)))
        .build()
        .unwrap();
    let gate = CancellationToken::new();
    let retry_ran = Arc::new(AtomicBool::new(false));
    // Fails once, then waits for the gate: its retry comes back while the worker is busy.
    let flaky = {
        let (gate, retry_ran) = (gate.clone(), Arc::clone(&retry_ran));
        BoxJob::new(move |cx: &JobContext| {
            if cx.attempt() == 1 {
                return Err("first".to_string());
            }
            retry_ran.store(true, Ordering::SeqCst);
            gate.wait_timeout(common::PATIENCE);
            Ok(0)
        })
    };
    let flaky = pool.submit(flaky).unwrap();
    let holder = pool.submit(waits_for(&gate, 1)).unwrap();
    eventually("one job runs and the other waits", || {
        let stats = pool.stats();
        stats.retried == 1 && stats.delayed == 0 && stats.busy == 1 && stats.queued == 1
    });
    // Let the timer thread finish putting the retry back (and, before, its wake-up).
    std::thread::sleep(Duration::from_millis(50));
    // The worker takes the holder or, when the backoff ran out first, the retry. The one
    // that waits is in the ready queue only if it is the holder: a retry was accepted
    // already, and comes back without a slot.
    let waiting_in_the_ready_queue = usize::from(retry_ran.load(Ordering::SeqCst));
    let room = 3 - waiting_in_the_ready_queue;
    let more: Vec<_> = (0..room as u64)
        .map(|i| {
            pool.try_submit(waits_for(&gate, 10 + i))
                .expect("room left")
        })
        .collect();
    assert!(matches!(
        pool.try_submit(returns(99)),
        Err(TrySubmitError::Full(_))
    ));
    let lens = seen.lock().unwrap().clone();
    let admitted: Vec<usize> = (waiting_in_the_ready_queue..=3).collect();
    assert_eq!(&lens[2..], admitted.as_slice(), "admission sees jobs only");
    gate.cancel();
    for handle in [flaky, holder].into_iter().chain(more) {
        assert!(handle.join().is_ok());
    }
    pool.wait_idle();
    assert!(pool.stats().is_balanced());
}
