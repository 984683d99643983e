//! Each run happens in a `job` span carrying the pool's name, the job id and the attempt,
//! and a retry is traced with the same fields: the trace core's testkit expects of every
//! backend. Alone in its binary: it installs a global subscriber (spans open on workers).

use std::time::{Duration, Instant};

use brigade_core::hooks::{AfterRun, Middleware, RunReport};
use brigade_core::testkit::{TraceRecorder, expected_retry_trace};
use brigade_core::{BoxJob, JobContext};
use brigade_thread::BoxPool;

struct RetryOnce;

impl Middleware<BoxJob<u64, String>, String> for RetryOnce {
    fn after_run(
        &self,
        _: &BoxJob<u64, String>,
        run: &RunReport<'_, String>,
        now: Instant,
    ) -> AfterRun {
        if run.attempt == 1 && !run.outcome.is_success() {
            AfterRun::RetryAt(now + Duration::from_millis(1))
        } else {
            AfterRun::Done
        }
    }
}

#[test]
fn a_retried_job_leaves_the_trace_every_backend_leaves() {
    let recorder = TraceRecorder::for_pool("traced");
    tracing::subscriber::set_global_default(recorder.clone()).unwrap();

    let pool = BoxPool::<u64, String>::builder()
        .name("traced")
        .workers(2)
        .layer(RetryOnce)
        .build()
        .unwrap();
    let handle = pool
        .submit(BoxJob::new(|cx: &JobContext| {
            if cx.attempt() == 1 {
                Err("again".into())
            } else {
                Ok(cx.id().get())
            }
        }))
        .unwrap();
    assert_eq!(handle.join(), Ok(1));
    drop(pool);

    assert_eq!(recorder.records(), expected_retry_trace());
}
