//! The runtime a pool runs on shuts down under it: tokio drops the pool's tasks, jobs and
//! all. Every job still ends in one terminal state, counted; the pool turns new jobs away,
//! and a shutdown from another runtime reports what came back.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use brigade_core::testkit::Units;
use brigade_core::{
    BoxAsyncJob, CancellationToken, ErrorKind, JobContext, SubmitError, TrySubmitError,
};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;

/// Generous: bounds waits for what takes microseconds when all is well.
const PATIENCE: Duration = Duration::from_secs(20);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn quick(value: u64) -> Job {
    BoxAsyncJob::new(move |_cx: JobContext| async move { Ok(value) })
}

#[test]
fn a_pool_whose_runtime_is_dropped_settles_every_job_and_refuses_new_ones() {
    let first = runtime();
    let pool = first.block_on(async {
        TokioPool::<Job>::builder()
            .workers(1)
            .queue_capacity(8)
            .build()
            .unwrap()
    });
    let started = CancellationToken::new();
    let running = {
        let started = started.clone();
        pool.try_submit(BoxAsyncJob::new(move |_cx: JobContext| {
            let started = started.clone();
            async move {
                started.cancel();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(1)
            }
        }))
        .unwrap()
    };
    let queued = pool.try_submit(quick(2)).unwrap();
    assert!(started.wait_timeout(PATIENCE), "the first job started");

    drop(first);

    let running = running
        .join_timeout(PATIENCE)
        .expect("the dropped run resolved");
    let error = running.unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 1));
    let queued = queued
        .join_timeout(PATIENCE)
        .expect("the queued job resolved");
    assert_eq!(queued.unwrap_err().kind(), ErrorKind::Returned);
    assert!(
        matches!(pool.try_submit(quick(3)), Err(TrySubmitError::Closed(_))),
        "nothing would run a new job"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.workers, stats.busy, stats.queued),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!((stats.cancelled, stats.returned), (1, 1), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");

    let second = runtime();
    let report = second
        .block_on(async {
            assert!(matches!(
                pool.submit(quick(4)).await,
                Err(SubmitError::Closed(_))
            ));
            tokio::time::timeout(PATIENCE, pool.shutdown()).await
        })
        .expect("the shutdown on another runtime returned");
    assert_eq!(
        report.unstarted.len(),
        1,
        "the queued job comes back: {report:?}"
    );
    assert!(pool.stats().is_balanced());
}

#[test]
fn a_pool_whose_idle_runtime_is_dropped_refuses_new_jobs() {
    let first = runtime();
    let pool = first.block_on(async {
        TokioPool::<Job>::builder()
            .min_workers(1)
            .max_workers(3)
            .build()
            .unwrap()
    });
    drop(first);
    let second = runtime();
    second.block_on(async {
        let refused = tokio::time::timeout(PATIENCE, pool.submit(quick(1)))
            .await
            .expect("the submit returned");
        assert!(matches!(refused, Err(SubmitError::Closed(_))));
        let stats = pool.stats();
        assert_eq!((stats.workers, stats.submitted), (0, 0), "{stats:?}");
        let report = tokio::time::timeout(PATIENCE, pool.shutdown())
            .await
            .expect("the shutdown returned");
        assert!(report.is_clean(), "{report:?}");
    });
}

#[test]
fn a_job_parked_behind_a_dropped_run_comes_back() {
    let first = runtime();
    let pool = first.block_on(async {
        TokioPool::<Job>::builder()
            .workers(2)
            .layer(Units::new(1))
            .build()
            .unwrap()
    });
    let started = CancellationToken::new();
    let holder = {
        let started = started.clone();
        pool.try_submit(BoxAsyncJob::new(move |_cx: JobContext| {
            let started = started.clone();
            async move {
                started.cancel();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(1)
            }
        }))
        .unwrap()
    };
    assert!(started.wait_timeout(PATIENCE), "the holder started");
    let parked = pool.try_submit(quick(2)).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while pool.stats().delayed != 1 {
        assert!(Instant::now() < deadline, "the second job never parked");
        std::thread::sleep(Duration::from_millis(1));
    }

    drop(first);

    let holder = holder
        .join_timeout(PATIENCE)
        .expect("the dropped run resolved");
    assert_eq!(holder.unwrap_err().kind(), ErrorKind::Cancelled);
    let parked = parked
        .join_timeout(PATIENCE)
        .expect("the parked job resolved");
    assert_eq!(parked.unwrap_err().kind(), ErrorKind::Returned);
    let stats = pool.stats();
    assert_eq!(
        (stats.workers, stats.busy, stats.delayed),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.is_balanced(), "{stats:?}");
    let report = runtime()
        .block_on(async { tokio::time::timeout(PATIENCE, pool.shutdown()).await })
        .expect("the shutdown on another runtime returned");
    assert_eq!(report.unstarted.len(), 1, "{report:?}");
}

/// Drops `runtime` while the thread unwinds a panic, as a failing `#[tokio::test]` drops
/// its current-thread runtime: the runtime drops the pool's tasks on the unwinding thread.
fn drop_while_unwinding(runtime: tokio::runtime::Runtime) {
    let unwound = std::panic::catch_unwind(AssertUnwindSafe(move || {
        let _dropped_as_the_panic_unwinds = runtime;
        std::panic::resume_unwind(Box::new("a failing test"));
    }));
    assert!(unwound.is_err());
}

#[test]
fn a_current_thread_runtime_dropped_while_its_thread_unwinds_settles_every_job() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = first.block_on(async {
        TokioPool::<Job>::builder()
            .workers(1)
            .queue_capacity(8)
            .build()
            .unwrap()
    });
    let started = CancellationToken::new();
    let running = {
        let started = started.clone();
        pool.try_submit(BoxAsyncJob::new(move |_cx: JobContext| {
            let started = started.clone();
            async move {
                started.cancel();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(1)
            }
        }))
        .unwrap()
    };
    let queued = pool.try_submit(quick(2)).unwrap();
    first
        .block_on(async { tokio::time::timeout(PATIENCE, started.cancelled()).await })
        .expect("the first job started");

    // Not taken for a panic of the pool's own: the runtime is gone, and no worker is
    // spawned on it again and again in its place.
    drop_while_unwinding(first);

    let running = running
        .join_timeout(PATIENCE)
        .expect("the dropped run resolved");
    assert_eq!(running.unwrap_err().kind(), ErrorKind::Cancelled);
    let queued = queued
        .join_timeout(PATIENCE)
        .expect("the queued job resolved");
    assert_eq!(queued.unwrap_err().kind(), ErrorKind::Returned);
    assert!(
        matches!(pool.try_submit(quick(3)), Err(TrySubmitError::Closed(_))),
        "nothing would run a new job"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.workers, stats.busy, stats.queued),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!((stats.cancelled, stats.returned), (1, 1), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
    let report = runtime()
        .block_on(async { tokio::time::timeout(PATIENCE, pool.shutdown()).await })
        .expect("the shutdown on another runtime returned");
    assert_eq!(report.unstarted.len(), 1, "{report:?}");
}
