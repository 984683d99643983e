//! The runtime a pool runs on shuts down while jobs wait off the workers, in the timer's
//! care: a retry's backoff, a start deferred to a time, a start parked for capacity held
//! elsewhere. Each comes back (`Returned`, counted, in the next shutdown's report),
//! whether or not a worker was left on the roster to notice the runtime go.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_core::hooks::Middleware;
use brigade_core::testkit::{RetryAfter, StartAfter, Units};
use brigade_core::{
    BoxAsyncJob, CancellationToken, ErrorKind, JobContext, JobHandle, Stats, TrySubmitError,
};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;
type Pool = TokioPool<Job>;

/// Generous: bounds waits for what takes microseconds when all is well.
const PATIENCE: Duration = Duration::from_secs(20);

const AN_HOUR: Duration = Duration::from_secs(3600);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn fails() -> Job {
    BoxAsyncJob::new(|_cx: JobContext| async { Err("no".to_string()) })
}

fn quick(value: u64) -> Job {
    BoxAsyncJob::new(move |_cx: JobContext| async move { Ok(value) })
}

/// A pool on `runtime` whose workers all retire a moment after they go idle, so that only
/// its timer task is left while a job waits.
fn pool_that_lets_its_workers_go(runtime: &tokio::runtime::Runtime, layer: Layer) -> Pool {
    let builder = Pool::builder()
        .min_workers(0)
        .max_workers(1)
        .keep_alive(Duration::from_millis(1));
    let _entered = runtime.enter();
    match layer {
        Layer::Owned(layer) => builder.layer_shared(layer.into()),
        Layer::Shared(layer) => builder.layer_shared(layer),
    }
    .build()
    .unwrap()
}

enum Layer {
    Owned(Box<dyn Middleware<Job, String>>),
    Shared(Arc<dyn Middleware<Job, String>>),
}

/// Waits (blocking, outside any runtime) until `condition` holds of the pool's stats.
fn eventually(pool: &Pool, what: &str, condition: impl Fn(&Stats) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition(&pool.stats()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what} ({:?})",
            pool.stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// After the pool's runtime was dropped: the waiting job's handle resolved `Returned`
/// with `attempts` runs behind it, the books balance with nothing left waiting, new jobs
/// are refused, and a shutdown from another runtime returns with the job in its report.
fn the_waiting_job_came_back(pool: &Pool, waiting: JobHandle<u64, String>, attempts: u32) {
    let error = waiting
        .join_timeout(PATIENCE)
        .expect("the waiting job's handle resolved once its runtime was gone")
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.attempts()),
        (ErrorKind::Returned, attempts)
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.workers, stats.busy, stats.queued, stats.delayed),
        (0, 0, 0, 0),
        "nothing is left waiting: {stats:?}"
    );
    assert_eq!(stats.returned, 1, "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
    assert!(
        matches!(pool.try_submit(quick(9)), Err(TrySubmitError::Closed(_))),
        "nothing would run a new job"
    );
    let report = runtime()
        .block_on(async { tokio::time::timeout(PATIENCE, pool.shutdown()).await })
        .expect("the shutdown on another runtime returned");
    assert_eq!(
        report.unstarted.len(),
        1,
        "the waiting job is in the report: {report:?}"
    );
    assert!(pool.stats().is_balanced(), "{:?}", pool.stats());
}

#[test]
fn a_retry_waiting_out_its_backoff_with_no_worker_left_comes_back() {
    let first = runtime();
    let pool = pool_that_lets_its_workers_go(&first, Layer::Owned(Box::new(RetryAfter(AN_HOUR))));
    let waiting = pool.try_submit(fails()).unwrap();
    eventually(&pool, "the job waits for its retry, no worker left", |s| {
        s.delayed == 1 && s.workers == 0 && s.retried == 1
    });

    drop(first);

    the_waiting_job_came_back(&pool, waiting, 1);
    assert_eq!(pool.stats().retried, 1);
}

#[test]
fn a_start_deferred_to_a_time_with_no_worker_left_comes_back() {
    let first = runtime();
    let pool = pool_that_lets_its_workers_go(&first, Layer::Owned(Box::new(StartAfter(AN_HOUR))));
    let waiting = pool.try_submit(quick(1)).unwrap();
    eventually(&pool, "the job waits for its start, no worker left", |s| {
        s.delayed == 1 && s.workers == 0
    });

    drop(first);

    the_waiting_job_came_back(&pool, waiting, 0);
}

#[test]
fn a_start_parked_for_capacity_held_elsewhere_with_no_worker_left_comes_back() {
    // Another pool, on a runtime that stays, holds the one unit both pools share.
    let holding = runtime();
    let unit: Arc<dyn Middleware<Job, String>> = Arc::new(Units::new(1));
    let holder_pool = {
        let _entered = holding.enter();
        Pool::builder()
            .workers(1)
            .layer_shared(Arc::clone(&unit))
            .build()
            .unwrap()
    };
    let (started, release) = (CancellationToken::new(), CancellationToken::new());
    let holder = {
        let (started, release) = (started.clone(), release.clone());
        holder_pool
            .try_submit(BoxAsyncJob::new(move |_cx: JobContext| {
                let (started, release) = (started.clone(), release.clone());
                async move {
                    started.cancel();
                    release.cancelled().await;
                    Ok(1)
                }
            }))
            .unwrap()
    };
    assert!(started.wait_timeout(PATIENCE), "the holder started");

    let first = runtime();
    let pool = pool_that_lets_its_workers_go(&first, Layer::Shared(unit));
    let waiting = pool.try_submit(quick(2)).unwrap();
    eventually(&pool, "the job waits for the unit, no worker left", |s| {
        s.delayed == 1 && s.workers == 0
    });

    drop(first);

    the_waiting_job_came_back(&pool, waiting, 0);
    release.cancel();
    assert_eq!(holder.join_timeout(PATIENCE).ok(), Some(Ok(1)));
    let report = holding
        .block_on(async { tokio::time::timeout(PATIENCE, holder_pool.shutdown()).await })
        .expect("the holder's pool shut down");
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn a_retry_waiting_out_its_backoff_beside_an_idle_worker_comes_back() {
    let first = runtime();
    let pool = {
        let _entered = first.enter();
        Pool::builder()
            .workers(1)
            .layer(RetryAfter(AN_HOUR))
            .build()
            .unwrap()
    };
    let waiting = pool.try_submit(fails()).unwrap();
    eventually(&pool, "the job waits for its retry", |s| {
        s.delayed == 1 && s.busy == 0 && s.retried == 1
    });

    drop(first);

    the_waiting_job_came_back(&pool, waiting, 1);
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
fn a_retry_waiting_on_a_current_thread_runtime_dropped_while_its_thread_unwinds_comes_back() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = pool_that_lets_its_workers_go(&first, Layer::Owned(Box::new(RetryAfter(AN_HOUR))));
    let waiting = pool.try_submit(fails()).unwrap();
    first.block_on(async {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = pool.stats();
            if stats.delayed == 1 && stats.workers == 0 && stats.retried == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the retry, no worker left: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });

    // Not taken for a panic of the timer's own: the runtime is gone, and no timer is
    // spawned on it again and again in its place.
    drop_while_unwinding(first);

    the_waiting_job_came_back(&pool, waiting, 1);
}
