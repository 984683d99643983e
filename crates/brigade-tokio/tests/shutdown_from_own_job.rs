//! A job that shuts its own pool down (awaiting `shutdown`, `shutdown_timeout` or
//! `shutdown_now` in its own future): the shutdown waits for every other job that can end
//! before the caller, hands back those that wait for it (for its worker, the pool's only
//! one, or for the capacity it holds) and returns its report while the caller still runs.
//! The caller's end is still counted, the pool's tasks still exit after it, and a
//! shutdown from outside still completes.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_core::testkit::{RetryAfter, Units};
use brigade_core::{BoxAsyncJob, CancellationToken, ErrorKind, JobContext, Stats, TrySubmitError};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;
type Pool = TokioPool<Job>;

/// Generous: bounds waits for what takes microseconds when all is well.
const PATIENCE: Duration = Duration::from_secs(20);

fn returns(value: u64) -> Job {
    BoxAsyncJob::new(move |_cx: JobContext| async move { Ok(value) })
}

/// A job that, once `go` opens, runs `then` with its own pool and its context.
fn calls_own_pool<F, Fut>(pool: &Arc<Pool>, go: &CancellationToken, then: F) -> Job
where
    F: Fn(Arc<Pool>, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    let (pool, go, then) = (Arc::clone(pool), go.clone(), Arc::new(then));
    BoxAsyncJob::new(move |cx: JobContext| {
        let (pool, go, then) = (Arc::clone(&pool), go.clone(), Arc::clone(&then));
        async move {
            go.cancelled().await;
            then(pool, cx).await
        }
    })
}

/// A job that runs until `go` opens or its token is cancelled, returning `value` or an
/// error.
fn runs_until(go: &CancellationToken, value: u64) -> Job {
    let go = go.clone();
    BoxAsyncJob::new(move |cx: JobContext| {
        let go = go.clone();
        async move {
            tokio::select! {
                () = go.cancelled() => Ok(value),
                () = cx.token().cancelled() => Err("stopped".to_string()),
            }
        }
    })
}

fn opened() -> CancellationToken {
    let go = CancellationToken::new();
    go.cancel();
    go
}

async fn until(pool: &Pool, what: &str, condition: impl Fn(&Stats) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition(&pool.stats()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what} ({:?})",
            pool.stats()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Awaits a job's handle, failing clearly if the job never ends (its shutdown hung).
async fn ends<T>(handle: impl Future<Output = T>, what: &str) -> T {
    tokio::time::timeout(PATIENCE, handle)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Once the caller's job ended: every task of the pool exits, a shutdown from outside
/// returns, nothing is left in flight and the books balance.
async fn the_pool_comes_to_rest(pool: &Pool) -> Stats {
    ends(
        pool.drained(),
        "the pool's tasks exit after the calling job",
    )
    .await;
    let report = ends(pool.shutdown(), "a shutdown from outside returns").await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(pool.tasks(), 0, "every task of the pool exited");
    let stats = pool.stats();
    assert_eq!(
        (stats.workers, stats.busy, stats.queued, stats.delayed),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.is_balanced(), "{stats:?}");
    assert!(
        matches!(pool.try_submit(returns(0)), Err(TrySubmitError::Closed(_))),
        "intake stays closed"
    );
    stats
}

const AN_HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_job_shutting_down_its_pool_gets_its_report() {
    let pool = Arc::new(Pool::builder().workers(2).build().unwrap());
    let shutting = pool
        .submit(calls_own_pool(&pool, &opened(), |pool, _cx| async move {
            let report = pool.shutdown().await;
            assert!(report.is_clean(), "{report:?}");
            Ok(report.finished)
        }))
        .await
        .unwrap();
    let finished = ends(shutting, "the shutdown in the pool's only job returned").await;
    assert_eq!(finished, Ok(0), "the caller had not finished yet");
    let stats = the_pool_comes_to_rest(&pool).await;
    assert_eq!((stats.submitted, stats.completed), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shutting_down_its_single_worker_pool_hands_back_the_queued_job() {
    let pool = Arc::new(Pool::builder().workers(1).build().unwrap());
    let go = CancellationToken::new();
    let shutting = pool
        .submit(calls_own_pool(&pool, &go, |pool, _cx| async move {
            let report = pool.shutdown().await;
            assert!(
                !report.deadline_passed && report.cancelled == 0,
                "{report:?}"
            );
            Ok(report.unstarted.len() as u64)
        }))
        .await
        .unwrap();
    let queued = pool.submit(returns(2)).await.unwrap();
    go.cancel();
    let handed_back = ends(
        shutting,
        "the shutdown returned though the queued job needs the caller's worker",
    )
    .await;
    assert_eq!(handed_back, Ok(1));
    let queued = ends(queued, "the queued job's handle resolved").await;
    assert_eq!(queued.unwrap_err().kind(), ErrorKind::Returned);
    let stats = the_pool_comes_to_rest(&pool).await;
    assert_eq!((stats.completed, stats.returned), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shutting_down_its_pool_hands_back_the_job_parked_for_its_capacity() {
    let pool = Arc::new(
        Pool::builder()
            .workers(2)
            .layer(Units::new(1))
            .build()
            .unwrap(),
    );
    let go = CancellationToken::new();
    let shutting = pool
        .submit(calls_own_pool(&pool, &go, |pool, _cx| async move {
            Ok(pool.shutdown().await.unstarted.len() as u64)
        }))
        .await
        .unwrap();
    until(&pool, "the caller runs", |stats| stats.busy == 1).await;
    let parked = pool.submit(returns(2)).await.unwrap();
    until(&pool, "the other job waits for the unit", |stats| {
        stats.delayed == 1
    })
    .await;
    go.cancel();
    let handed_back = ends(
        shutting,
        "the shutdown returned though the parked job needs the caller's unit",
    )
    .await;
    assert_eq!(handed_back, Ok(1));
    let parked = ends(parked, "the parked job's handle resolved").await;
    assert_eq!(parked.unwrap_err().kind(), ErrorKind::Returned);
    let stats = the_pool_comes_to_rest(&pool).await;
    assert_eq!((stats.completed, stats.returned), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shutting_down_its_pool_still_waits_for_what_other_workers_run() {
    let pool = Arc::new(Pool::builder().workers(2).build().unwrap());
    let go = CancellationToken::new();
    let other = pool.submit(runs_until(&go, 7)).await.unwrap();
    let mut shutting = pool
        .submit(calls_own_pool(&pool, &opened(), |pool, _cx| async move {
            Ok(pool.shutdown().await.finished)
        }))
        .await
        .unwrap();
    until(&pool, "both run", |stats| stats.busy == 2).await;
    let early = tokio::time::timeout(Duration::from_millis(50), &mut shutting).await;
    assert!(early.is_err(), "the caller did not wait for the other job");
    go.cancel();
    assert_eq!(ends(other, "the other job ended").await, Ok(7));
    let finished = ends(shutting, "the shutdown returned once the other job ended").await;
    assert_eq!(finished, Ok(1), "the report counts the other job");
    let stats = the_pool_comes_to_rest(&pool).await;
    assert_eq!(stats.completed, 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_asked_for_by_a_job_that_shut_its_pool_down_is_handed_back() {
    let pool = Arc::new(
        Pool::builder()
            .workers(1)
            .layer(RetryAfter(AN_HOUR))
            .build()
            .unwrap(),
    );
    let shutting = pool
        .submit(calls_own_pool(&pool, &opened(), |pool, _cx| async move {
            let report = pool.shutdown().await;
            Err(format!("failed after a report of {report:?}"))
        }))
        .await
        .unwrap();
    let error = ends(shutting, "the caller's retry was settled")
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.attempts()),
        (ErrorKind::Returned, 1),
        "nothing would run the retry: it comes back"
    );
    ends(
        pool.drained(),
        "the pool's tasks exit after the calling job",
    )
    .await;
    let report = ends(pool.shutdown_now(), "a shutdown from outside returns").await;
    assert_eq!(report.unstarted.len(), 1, "the caller is in it: {report:?}");
    let stats = pool.stats();
    assert_eq!((stats.returned, stats.retried), (1, 0), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(pool.tasks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_now_from_a_job_cancels_the_others_and_the_caller() {
    let pool = Arc::new(Pool::builder().workers(2).build().unwrap());
    let never = CancellationToken::new();
    let other = pool.submit(runs_until(&never, 7)).await.unwrap();
    let go = CancellationToken::new();
    let shutting = pool
        .submit(calls_own_pool(&pool, &go, |pool, cx| async move {
            let report = pool.shutdown_now().await;
            assert!(cx.token().is_cancelled(), "the caller was cancelled too");
            Ok(report.cancelled)
        }))
        .await
        .unwrap();
    until(&pool, "both run", |stats| stats.busy == 2).await;
    go.cancel();
    let cancelled = ends(shutting, "shutdown_now from a job returned").await;
    assert_eq!(cancelled, Ok(2), "the other job and the caller");
    let other = ends(other, "the other job ended").await;
    assert!(other.unwrap_err().is_cancelled());
    let stats = the_pool_comes_to_rest(&pool).await;
    assert_eq!((stats.completed, stats.cancelled), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_from_a_job_stops_the_others_at_its_deadline() {
    let pool = Arc::new(Pool::builder().workers(2).build().unwrap());
    let never = CancellationToken::new();
    let other = pool.submit(runs_until(&never, 7)).await.unwrap();
    let go = CancellationToken::new();
    let shutting = pool
        .submit(calls_own_pool(&pool, &go, |pool, _cx| async move {
            let report = pool.shutdown_timeout(Duration::from_millis(20)).await;
            assert!(report.deadline_passed, "{report:?}");
            Ok(report.cancelled)
        }))
        .await
        .unwrap();
    until(&pool, "both run", |stats| stats.busy == 2).await;
    go.cancel();
    let cancelled = ends(shutting, "shutdown_timeout from a job returned").await;
    assert_eq!(cancelled, Ok(2), "the other job and the caller");
    let other = ends(other, "the other job ended").await;
    assert!(other.unwrap_err().is_cancelled());
    let stats = the_pool_comes_to_rest(&pool).await;
    assert_eq!((stats.completed, stats.cancelled), (1, 1), "{stats:?}");
}

/// Starts a shutdown from outside that waits for the pool's jobs, and waits until it has
/// closed intake. The pool's queue must be full: a submit is turned back `Full` until
/// then, `Closed` after, and never accepted.
async fn outside_shutdown_under_way(
    pool: &Arc<Pool>,
) -> tokio::task::JoinHandle<brigade_core::ShutdownReport<Job>> {
    let outside = {
        let pool = Arc::clone(pool);
        tokio::spawn(async move { pool.shutdown().await })
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        match pool.try_submit(returns(0)) {
            Err(TrySubmitError::Closed(_)) => return outside,
            Err(TrySubmitError::Full(_)) => {}
            Err(error) => panic!("refused: {error:?}"),
            Ok(_) => panic!("accepted though the queue is full"),
        }
        assert!(
            Instant::now() < deadline,
            "the outside shutdown never began"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shutting_down_its_pool_while_an_outside_shutdown_waits_returns_at_once() {
    let pool = Arc::new(
        Pool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let go = CancellationToken::new();
    let shutting = pool
        .submit(calls_own_pool(&pool, &go, |pool, _cx| async move {
            let report = pool.shutdown().await;
            assert!(report.is_clean() && report.finished == 0, "{report:?}");
            Ok(1)
        }))
        .await
        .unwrap();
    let queued = pool.submit(returns(2)).await.unwrap();
    let outside = outside_shutdown_under_way(&pool).await;
    go.cancel();
    assert_eq!(
        ends(shutting, "the nested shutdown returned at once").await,
        Ok(1)
    );
    assert_eq!(
        ends(queued, "the queued job ran after the caller").await,
        Ok(2),
        "the outside shutdown runs what waited for the caller"
    );
    let report = ends(outside, "the outside shutdown returned")
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
    let stats = the_pool_comes_to_rest(&pool).await;
    assert_eq!(stats.completed, stats.submitted, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_now_from_a_job_while_an_outside_shutdown_waits_hands_back_into_its_report() {
    let pool = Arc::new(
        Pool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let go = CancellationToken::new();
    let shutting = pool
        .submit(calls_own_pool(&pool, &go, |pool, cx| async move {
            let report = pool.shutdown_now().await;
            assert!(report.is_clean(), "its own report is empty: {report:?}");
            assert!(cx.token().is_cancelled(), "the caller was cancelled too");
            Ok(1)
        }))
        .await
        .unwrap();
    let queued = pool.submit(returns(2)).await.unwrap();
    let outside = outside_shutdown_under_way(&pool).await;
    go.cancel();
    assert_eq!(
        ends(shutting, "the nested shutdown_now returned").await,
        Ok(1)
    );
    let queued = ends(queued, "the queued job's handle resolved").await;
    assert_eq!(queued.unwrap_err().kind(), ErrorKind::Returned);
    let report = ends(outside, "the outside shutdown returned")
        .await
        .unwrap();
    assert_eq!(
        report.unstarted.len(),
        1,
        "the outside report carries the queued job: {report:?}"
    );
    let stats = the_pool_comes_to_rest(&pool).await;
    assert_eq!(stats.returned, 1, "{stats:?}");
}
