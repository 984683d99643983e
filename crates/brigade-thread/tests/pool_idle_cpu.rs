//! An idle pool burns no CPU: its workers (and its timer) block instead of spinning.
//! Alone in its test binary so no other test's work is measured.

#![cfg(target_os = "linux")]

use std::time::Duration;

use brigade_core::hooks::Middleware;
use brigade_core::{BoxJob, JobContext};
use brigade_thread::BoxPool;

/// User plus system CPU time of this process, in clock ticks (usually 10 ms).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name may contain spaces; the fields after it are space separated.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

struct Nothing;
impl Middleware<BoxJob<u64, String>, String> for Nothing {}

#[test]
fn an_idle_pool_burns_no_cpu() {
    let plain = BoxPool::<u64, String>::builder()
        .min_workers(4)
        .max_workers(8)
        .build()
        .unwrap();
    let layered = BoxPool::<u64, String>::builder()
        .workers(4)
        .layer(Nothing)
        .build()
        .unwrap();
    for pool in [&plain, &layered] {
        for i in 0..100 {
            pool.execute(BoxJob::new(move |_: &JobContext| Ok(i)))
                .unwrap();
        }
        pool.wait_idle();
    }
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks() - before;
    // Spinning 9 threads for 1.5 s would use hundreds of ticks; blocking uses none.
    assert!(used <= 15, "an idle pool used {used} ticks of CPU in 1.5 s");
    assert!(plain.stats().workers >= 4 && layered.stats().workers == 4);
}
