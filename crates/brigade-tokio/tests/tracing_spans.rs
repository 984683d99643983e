//! Each run happens inside a `job` span carrying the pool's name, the job's id and the
//! attempt, as on the thread backend.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::middleware::{AfterRun, Middleware, RunOutcome, RunReport};
use brigade_core::{BoxAsyncJob, JobContext};
use brigade_tokio::TokioPool;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

type Job = BoxAsyncJob<u64, String>;

/// Records `(pool, id, attempt)` of every `job` span.
#[derive(Clone, Default)]
struct JobSpans(Arc<Mutex<Vec<(String, u64, u64)>>>);

#[derive(Default)]
struct Fields {
    pool: String,
    id: u64,
    attempt: u64,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "id" => self.id = value,
            "attempt" => self.attempt = value,
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "pool" {
            self.pool = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for JobSpans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "job" {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push((fields.pool, fields.id, fields.attempt));
        }
    }
}

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
fn every_run_has_a_job_span_with_pool_id_and_attempt() {
    let spans = JobSpans::default();
    let subscriber = Registry::default().with(spans.clone());
    tracing::subscriber::with_default(subscriber, || {
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
    let spans = spans.0.lock().unwrap();
    assert_eq!(
        *spans,
        vec![("traced".to_string(), 1, 1), ("traced".to_string(), 1, 2)]
    );
}
