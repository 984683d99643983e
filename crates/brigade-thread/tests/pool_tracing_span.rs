//! Each run happens in a `job` span carrying the pool's name, the job id and the attempt.
//! Alone in its binary: it installs a global subscriber (spans open on worker threads).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::middleware::{AfterRun, Middleware, RunReport};
use brigade_core::{BoxJob, JobContext};
use brigade_thread::BoxPool;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Default, Debug, Clone, PartialEq, Eq)]
struct SpanSeen {
    name: String,
    pool: String,
    id: u64,
    attempt: u64,
}

impl Visit for SpanSeen {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "pool" {
            self.pool = format!("{value:?}").trim_matches('"').to_string();
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "pool" {
            self.pool = value.to_string();
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "id" => self.id = value,
            "attempt" => self.attempt = value,
            _ => {}
        }
    }
}

#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<SpanSeen>>>,
    next: Arc<AtomicU64>,
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut seen = SpanSeen {
            name: attributes.metadata().name().to_string(),
            ..Default::default()
        };
        attributes.record(&mut seen);
        self.spans.lock().unwrap().push(seen);
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

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
fn every_run_has_a_job_span_with_pool_id_and_attempt() {
    let recorder = Recorder::default();
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
    let id = handle.join().unwrap();
    drop(pool);

    let spans: Vec<SpanSeen> = recorder
        .spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.name == "job")
        .cloned()
        .collect();
    let expected = |attempt| SpanSeen {
        name: "job".into(),
        pool: "traced".into(),
        id,
        attempt,
    };
    assert_eq!(spans, [expected(1), expected(2)]);
}
