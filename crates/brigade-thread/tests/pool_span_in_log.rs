//! Without a `tracing` subscriber, a pool whose build turns on `tracing`'s `log` feature
//! still shows each run's `job` span to a `log` logger: the span is skipped only when
//! nobody at all would see it. Alone in its binary: it installs the process's logger.

use std::sync::Mutex;

use brigade_core::{BoxJob, JobContext};
use brigade_thread::BoxPool;

/// Keeps every line `log` is given.
struct Lines(Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.target(), record.args());
        self.0.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static LINES: Lines = Lines(Mutex::new(Vec::new()));

#[test]
fn a_logger_sees_each_run_s_span_when_no_subscriber_is_set() {
    log::set_logger(&LINES).unwrap();
    log::set_max_level(log::LevelFilter::Info);

    let pool = BoxPool::<u64, String>::builder()
        .name("logged")
        .workers(1)
        .build()
        .unwrap();
    let handle = pool
        .submit(BoxJob::new(|cx: &JobContext| Ok(cx.id().get())))
        .unwrap();
    let id = handle.join().unwrap();
    drop(pool);

    let lines = LINES.0.lock().unwrap();
    let span = format!("job; pool=\"logged\" id={id} attempt=1");
    assert!(
        lines.iter().any(|line| line.contains(&span)),
        "no line shows the run's span {span:?}: {lines:#?}"
    );
}
