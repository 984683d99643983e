//! A panicking middleware hook costs neither a worker nor the books.

use std::time::Instant;

use brigade_core::middleware::{AfterRun, Middleware, RunReport};
use brigade_core::{BoxAsyncJob, JobContext};
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
async fn a_panicking_hook_ends_the_job_returned_and_the_pool_goes_on() {
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
    assert!(error.is_returned(), "{error:?}");
    let fine = pool
        .submit(BoxAsyncJob::new(|_cx: JobContext| async { Ok(1) }))
        .await
        .unwrap();
    assert_eq!(fine.await, Ok(1));
    pool.wait_idle().await;
    let stats = pool.stats();
    assert_eq!((stats.workers, stats.busy), (1, 0), "{stats:?}");
    assert_eq!((stats.returned, stats.completed), (1, 1), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
    assert!(pool.shutdown().await.is_clean());
}
