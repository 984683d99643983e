//! A job waiting off the workers (a retry's backoff, a start deferred to a time, a start
//! waiting for capacity) whose handle is cancelled ends cancelled at once, counted once,
//! not when its wait would have ended; nor does a shutdown wait it out.

mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use brigade_core::hooks::Middleware;
use brigade_core::testkit::{RetryAfter, StartAfter, Units};
use brigade_core::{BoxJob, CancellationToken, ErrorKind, JobContext};
use brigade_thread::BoxPool;
use common::{Job, PATIENCE, eventually, fails, returns};

const AN_HOUR: Duration = Duration::from_secs(3600);

/// A job that runs until `gate` opens or the pool stops it: longer than the test's
/// patience, so only a cancel can end a wait behind it.
/// Runs until `gate` is cancelled, cancelling `started` first: once it is, the job holds
/// whatever the layers granted its start.
fn holds_until(gate: &CancellationToken, started: &CancellationToken) -> Job {
    let (gate, started) = (gate.clone(), started.clone());
    BoxJob::new(move |cx: &JobContext| {
        started.cancel();
        let deadline = Instant::now() + AN_HOUR;
        while !gate.is_cancelled() && !cx.is_cancelled() && Instant::now() < deadline {
            gate.wait_timeout(Duration::from_millis(5));
        }
        Ok(1)
    })
}

/// A pool that stops at once if the test fails: its graceful drop would wait out the
/// hour-long waits the fix is about.
struct Pool(Arc<BoxPool<u64, String>>);

impl Pool {
    fn with(layer: impl Middleware<Job, String>) -> Self {
        Pool(Arc::new(
            BoxPool::builder().workers(2).layer(layer).build().unwrap(),
        ))
    }

    /// Shuts the pool down gracefully, failing if it waits out an hour.
    fn shuts_down(&self) {
        let (done, finished) = mpsc::channel();
        let pool = Arc::clone(&self.0);
        thread::spawn(move || {
            let _ = done.send(pool.shutdown().is_clean());
        });
        let clean = finished
            .recv_timeout(PATIENCE)
            .expect("the graceful shutdown waited for nothing cancelled");
        assert!(clean);
    }
}

impl std::ops::Deref for Pool {
    type Target = BoxPool<u64, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = self.0.shutdown_now();
        }
    }
}

#[test]
fn cancelling_a_job_waiting_out_its_retry_backoff_ends_it_at_once() {
    let pool = Pool::with(RetryAfter(AN_HOUR));
    let handle = pool.submit(fails("no")).unwrap();
    eventually("the job waits for its retry", || pool.stats().delayed == 1);
    handle.cancel();
    let error = handle
        .join_timeout(PATIENCE)
        .expect("the cancel ended the wait")
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 1));
    let stats = pool.stats();
    assert_eq!(
        (stats.cancelled, stats.retried, stats.delayed),
        (1, 1, 0),
        "{stats:?}"
    );
    assert!(stats.is_balanced(), "{stats:?}");
    pool.shuts_down();
    assert_eq!(pool.stats().cancelled, 1, "counted once");
}

#[test]
fn cancelling_a_job_whose_start_is_deferred_ends_it_at_once() {
    let pool = Pool::with(StartAfter(AN_HOUR));
    let handle = pool.submit(returns(1)).unwrap();
    let other = pool.submit(returns(2)).unwrap();
    eventually("both jobs wait for their start", || {
        pool.stats().delayed == 2
    });
    handle.cancel();
    let error = handle
        .join_timeout(PATIENCE)
        .expect("the cancel ended the wait")
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 0));
    let stats = pool.stats();
    assert_eq!(
        (stats.cancelled, stats.delayed),
        (1, 1),
        "the other job still waits"
    );
    other.cancel();
    assert!(
        other
            .join_timeout(PATIENCE)
            .expect("the cancel ended the wait")
            .unwrap_err()
            .is_cancelled()
    );
    pool.shuts_down();
    let stats = pool.stats();
    assert_eq!(stats.cancelled, 2, "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}

#[test]
fn cancelling_a_job_parked_for_capacity_ends_it_at_once() {
    let pool = Pool::with(Units::new(1));
    let (gate, started) = (CancellationToken::new(), CancellationToken::new());
    let holder = pool.submit(holds_until(&gate, &started)).unwrap();
    // Its body, not only a worker taking it: a worker counts busy before the layers grant
    // the start, and a job submitted in between would take the unit first.
    assert!(started.wait_timeout(PATIENCE), "the holder runs");
    let parked = pool.submit(returns(2)).unwrap();
    let behind = pool.submit(returns(3)).unwrap();
    eventually("both wait for the unit", || pool.stats().delayed == 2);
    parked.cancel();
    let error = parked
        .join_timeout(PATIENCE)
        .expect("the cancel ended the wait while the holder runs")
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 0));
    assert_eq!(pool.stats().delayed, 1, "the job behind it still waits");
    gate.cancel();
    assert_eq!(holder.join(), Ok(1));
    assert_eq!(
        behind.join_timeout(PATIENCE).ok(),
        Some(Ok(3)),
        "the job behind the cancelled one starts"
    );
    pool.shuts_down();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled), (2, 1), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}
