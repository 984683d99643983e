//! A panicking middleware hook costs neither a worker, nor the books, nor the job.

use std::time::Instant;

use brigade_core::hooks::{AfterRun, Middleware, RunReport, Start};
use brigade_core::{BoxAsyncJob, ErrorKind, JobContext};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u32, String>;

struct PanicsOnFailure;

impl Middleware<Job, String> for PanicsOnFailure {
    fn after_run(&self, _: &Job, run: &RunReport<'_, String>, _: Instant) -> AfterRun {
        assert!(run.outcome.is_success(), "policy bug");
        AfterRun::Done
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_after_run_hook_leaves_the_job_its_own_outcome() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .layer(PanicsOnFailure)
        .build()
        .unwrap();
    let failing = pool
        .submit(BoxAsyncJob::new(|_cx: JobContext| async {
            Err("no".to_string())
        }))
        .await
        .unwrap();
    let error = failing.await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed, "{error:?}");
    let fine = pool
        .submit(BoxAsyncJob::new(|_cx: JobContext| async { Ok(1) }))
        .await
        .unwrap();
    assert_eq!(fine.await, Ok(1));
    pool.wait_idle().await;
    let stats = pool.stats();
    assert_eq!((stats.workers, stats.busy), (1, 0), "{stats:?}");
    assert_eq!((stats.failed, stats.completed), (1, 1), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
    assert!(pool.shutdown().await.is_clean());
}

/// Panics before the start of jobs returning 66.
struct PanicsBeforeStart;

impl Middleware<Job, String> for PanicsBeforeStart {
    fn before_start(&self, _: &Job, _: Instant) -> Start {
        panic!("before_start exploded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_hook_panics_before_its_start_comes_back_in_the_report() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .layer(PanicsBeforeStart)
        .build()
        .unwrap();
    let handle = pool
        .submit(BoxAsyncJob::new(|_cx: JobContext| async { Ok(66) }))
        .await
        .unwrap();
    let error = handle.await.unwrap_err();
    assert!(error.is_returned(), "{error:?}");
    pool.wait_idle().await;
    let stats = pool.stats();
    assert_eq!(
        (stats.workers, stats.busy, stats.returned),
        (1, 0, 1),
        "{stats:?}"
    );
    assert!(stats.is_balanced(), "{stats:?}");
    let report = pool.shutdown().await;
    assert_eq!(report.unstarted.len(), 1, "the job is not lost");
    assert_eq!(report.finished, 0);
}

/// Panics when asked to admit a job.
struct PanicsAtAdmission;

impl Middleware<Job, String> for PanicsAtAdmission {
    fn admit(&self, _: &Job, _: brigade_core::hooks::QueueState) -> brigade_core::hooks::Admission {
        panic!("admit exploded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_panicking_at_admission_hands_the_job_back_to_the_submitter() {
    let pool = TokioPool::<Job>::builder()
        .workers(1)
        .layer(PanicsAtAdmission)
        .build()
        .unwrap();
    for _ in 0..2 {
        let refused = pool
            .submit(BoxAsyncJob::new(|_cx: JobContext| async { Ok(1) }))
            .await
            .expect_err("the hook's panic refuses the job");
        assert!(
            matches!(&refused, brigade_core::SubmitError::Rejected(_, reason) if reason.reason().contains("panicked")),
            "{refused:?}"
        );
    }
    let stats = pool.stats();
    assert_eq!((stats.rejected, stats.submitted), (2, 0), "{stats:?}");
    assert!(pool.shutdown().await.is_clean());
}
