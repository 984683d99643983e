//! The blocking entry points called from async code: they block through `block_in_place`
//! on a multi-thread runtime, and return a typed error on a current-thread runtime (with
//! the job, for the submits), where waiting would stall the only thread that runs the pool.
//! Before, both panicked ("Cannot start a runtime from within a runtime"), and `wait_idle`
//! and the shutdowns kept panicking on a current-thread runtime.

use brigade_core::{
    BoxAsyncJob, Executor, InAsyncContext, JobContext, SubmitError, SubmitTimeoutError,
    async_job_fn,
};
use brigade_tokio::TokioPool;
use std::time::Duration;

type Job = BoxAsyncJob<u32, String>;

fn job(value: u32) -> Job {
    BoxAsyncJob::new(async_job_fn(
        move |_cx: JobContext| async move { Ok(value) },
    ))
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_submits_on_a_current_thread_runtime_hand_the_job_back() {
    let pool = TokioPool::<Job>::builder().workers(1).build().unwrap();
    let refused = pool.blocking_submit(job(1)).unwrap_err();
    assert!(
        matches!(refused, SubmitError::InAsyncContext(_)),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("await"),
        "says what to do: {refused}"
    );
    let refused = Executor::execute(&pool, job(2)).unwrap_err();
    assert!(matches!(refused, SubmitError::InAsyncContext(_)));
    let refused = Executor::submit_timeout(&pool, job(3), Duration::from_secs(1)).unwrap_err();
    assert!(matches!(refused, SubmitTimeoutError::InAsyncContext(_)));
    // Nothing was accepted, and the async methods still work.
    assert_eq!(pool.stats().submitted, 0);
    assert_eq!(pool.submit(job(4)).await.unwrap().await.unwrap(), 4);
    pool.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_waits_and_shutdowns_on_a_current_thread_runtime_do_nothing_and_say_why() {
    let pool = TokioPool::<Job>::builder().workers(1).build().unwrap();
    let queued = pool.submit(job(7)).await.unwrap();
    assert_eq!(Executor::wait_idle(&pool), Err(InAsyncContext));
    assert_eq!(Executor::shutdown(&pool).unwrap_err(), InAsyncContext);
    assert_eq!(
        Executor::shutdown_timeout(&pool, Duration::from_secs(1)).unwrap_err(),
        InAsyncContext
    );
    let refused = Executor::shutdown_now(&pool).unwrap_err();
    assert!(
        refused.to_string().contains("await"),
        "says what to do: {refused}"
    );
    // The pool was left as it was: still accepting, and the job queued before runs.
    assert_eq!(queued.await.unwrap(), 7);
    assert_eq!(pool.submit(job(8)).await.unwrap().await.unwrap(), 8);
    assert!(pool.shutdown().await.is_clean());
    assert_eq!(pool.stats().completed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_methods_on_a_multi_thread_runtime_work_from_async_code() {
    let pool = TokioPool::<Job>::builder().workers(2).build().unwrap();
    let handle = pool.blocking_submit(job(5)).unwrap();
    Executor::execute(&pool, job(6)).unwrap();
    Executor::wait_idle(&pool).unwrap();
    assert_eq!(handle.await.unwrap(), 5);
    let report = Executor::shutdown(&pool).unwrap();
    assert!(report.is_clean());
    assert_eq!(pool.stats().completed, 2);
}
