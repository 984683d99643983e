//! Each run happens inside a `job` span carrying the pool's name, the job's id and the
//! attempt, and a retry is traced with the same fields: the trace core's testkit expects
//! of every backend.

use std::time::{Duration, Instant};

use brigade_core::hooks::{AfterRun, Middleware, RunOutcome, RunReport};
use brigade_core::testkit::{TraceRecorder, expected_retry_trace};
use brigade_core::{BoxAsyncJob, JobContext};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;

struct RetryOnce;

impl Middleware<Job, String> for RetryOnce {
    fn after_run(&self, _: &Job, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        match run.outcome {
            RunOutcome::Failed(_) if run.attempt == 1 => {
                AfterRun::RetryAt(now + Duration::from_millis(1))
            }
            _ => AfterRun::Done,
        }
    }
}

#[test]
fn a_retried_job_leaves_the_trace_every_backend_leaves() {
    let recorder = TraceRecorder::for_pool("traced");
    tracing::subscriber::with_default(recorder.clone(), || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let pool = TokioPool::<Job>::builder()
                .name("traced")
                .workers(1)
                .layer(RetryOnce)
                .build()
                .unwrap();
            let flaky = BoxAsyncJob::new(|cx: JobContext| async move {
                if cx.attempt() == 1 {
                    Err("first run fails".to_string())
                } else {
                    Ok(cx.id().get())
                }
            });
            let handle = pool.submit(flaky).await.unwrap();
            assert_eq!(handle.await, Ok(1));
            pool.shutdown().await;
        });
    });
    assert_eq!(recorder.records(), expected_retry_trace());
}
