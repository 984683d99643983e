//! What every backend traces, checked the same way on each: a subscriber that records each
//! span's and event's name and field names, and the trace a job retried once must leave.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One span or event: its name (an event's is its message) and its field names, sorted.
///
/// # Examples
///
/// ```
/// use brigade_core::testkit::TraceRecord;
///
/// let span = TraceRecord::span("job", &["pool", "id", "attempt"]);
/// assert_eq!(span.fields, ["attempt", "id", "pool"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// `"span"` or `"event"`.
    pub kind: &'static str,
    /// The span's name or the event's message.
    pub name: String,
    /// The field names, sorted (an event's `message` left out).
    pub fields: Vec<String>,
}

impl TraceRecord {
    /// A span record.
    ///
    /// # Examples
    ///
    /// See [`TraceRecord`].
    #[must_use]
    pub fn span(name: &str, fields: &[&str]) -> Self {
        Self::new("span", name, fields)
    }

    /// An event record.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = brigade_core::testkit::TraceRecord::event("hello", &["pool"]);
    /// assert_eq!(event.kind, "event");
    /// ```
    #[must_use]
    pub fn event(message: &str, fields: &[&str]) -> Self {
        Self::new("event", message, fields)
    }

    fn new(kind: &'static str, name: &str, fields: &[&str]) -> Self {
        let mut fields: Vec<String> = fields.iter().map(ToString::to_string).collect();
        fields.sort();
        TraceRecord {
            kind,
            name: name.to_string(),
            fields,
        }
    }
}

/// A `tracing` subscriber recording every span and event of one pool (those whose `pool`
/// field is the given name), for a backend's test to compare with
/// [`expected_retry_trace`].
///
/// # Examples
///
/// ```
/// use brigade_core::testkit::{TraceRecord, TraceRecorder};
///
/// let recorder = TraceRecorder::for_pool("traced");
/// tracing::subscriber::with_default(recorder.clone(), || {
///     tracing::info!(pool = "traced", id = 1u64, "hello");
///     tracing::info!(pool = "other", "not ours");
/// });
/// assert_eq!(recorder.records(), [TraceRecord::event("hello", &["id", "pool"])]);
/// ```
#[derive(Clone, Debug)]
pub struct TraceRecorder {
    pool: Arc<str>,
    records: Arc<Mutex<Vec<TraceRecord>>>,
    next_id: Arc<AtomicU64>,
}

impl TraceRecorder {
    /// Records what pool `pool` traces.
    ///
    /// # Examples
    ///
    /// See [`TraceRecorder`].
    #[must_use]
    pub fn for_pool(pool: &str) -> Self {
        TraceRecorder {
            pool: Arc::from(pool),
            records: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// What was recorded, in order.
    ///
    /// # Examples
    ///
    /// See [`TraceRecorder`].
    #[must_use]
    pub fn records(&self) -> Vec<TraceRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn keep(&self, kind: &'static str, name: String, fields: Fields) {
        if fields.pool.as_deref() == Some(&*self.pool) {
            let mut names = fields.names;
            names.sort();
            self.records
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(TraceRecord {
                    kind,
                    name,
                    fields: names,
                });
        }
    }
}

#[derive(Default)]
struct Fields {
    names: Vec<String>,
    message: String,
    pool: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let text = if field.name() == "pool" {
            text.trim_matches('"').to_string()
        } else {
            text
        };
        self.record(field, text);
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            name => {
                if name == "pool" {
                    self.pool = Some(value);
                }
                self.names.push(name.to_string());
            }
        }
    }
}

impl Subscriber for TraceRecorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        self.keep("span", attributes.metadata().name().to_string(), fields);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = std::mem::take(&mut fields.message);
        self.keep("event", message, fields);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// The trace of one job that fails its first run and succeeds on its retry, identical on
/// every backend: the run's span, the retry's event, the second run's span.
///
/// # Examples
///
/// ```
/// let trace = brigade_core::testkit::expected_retry_trace();
/// assert_eq!(trace.len(), 3);
/// ```
#[must_use]
pub fn expected_retry_trace() -> Vec<TraceRecord> {
    let run = TraceRecord::span("job", &["pool", "id", "attempt"]);
    vec![
        run.clone(),
        TraceRecord::event("run failed, retry scheduled", &["pool", "id", "attempt"]),
        run,
    ]
}
