//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use brigade_core::{BoxJob, CancellationToken, JobContext};

/// Generous: these bound waits for things that happen in microseconds when all is well.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Waits until `condition` holds, failing the test after [`PATIENCE`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub type Job = BoxJob<u64, String>;

/// A job returning `value`.
pub fn returns(value: u64) -> Job {
    BoxJob::new(move |_: &JobContext| Ok(value))
}

/// A job failing with `message`.
pub fn fails(message: &'static str) -> Job {
    BoxJob::new(move |_: &JobContext| Err(message.to_string()))
}

/// A job that blocks until `gate` is cancelled (opened) or its own token is, then returns.
pub fn waits_for(gate: &CancellationToken, value: u64) -> Job {
    let gate = gate.clone();
    BoxJob::new(move |cx: &JobContext| {
        let deadline = Instant::now() + PATIENCE;
        while !gate.is_cancelled() && !cx.is_cancelled() && Instant::now() < deadline {
            gate.wait_timeout(Duration::from_millis(5));
        }
        if cx.is_cancelled() {
            Err("cancelled".to_string())
        } else {
            Ok(value)
        }
    })
}
