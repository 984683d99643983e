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

/// The kernel's id of the calling thread (Linux), read from `/proc/thread-self`.
pub fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Whether thread `tid` of this process is asleep in the kernel (state `S`): blocked on a
/// lock, a condvar or a channel, not running or runnable.
pub fn is_asleep(tid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name, which may itself contain spaces.
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('S'))
}

/// Waits until every thread of `tids` has been asleep on two looks 20 ms apart: parked
/// where the test expects, not merely preempted on its way there.
pub fn eventually_all_asleep(what: &str, tids: &[u32]) {
    eventually(what, || {
        tids.iter().all(|&tid| is_asleep(tid)) && {
            std::thread::sleep(Duration::from_millis(20));
            tids.iter().all(|&tid| is_asleep(tid))
        }
    });
}

/// A job that returns `value` once `gate` opens (cancelled), bounded by [`PATIENCE`].
pub fn sleeper_until(gate: &CancellationToken, value: u64) -> Job {
    let gate = gate.clone();
    BoxJob::new(move |_: &JobContext| {
        gate.wait_timeout(PATIENCE);
        Ok(value)
    })
}
