//! The randomized accounting stress test on the thread backend (see `common/stress.rs`).
#![cfg(all(
    feature = "retry",
    feature = "dead-letter",
    feature = "drop",
    feature = "timeout"
))]

mod common;

use brigade_core::{Job, JobContext};
use brigade_thread::ThreadPool;
use common::stress::{self, STRESS_PANIC, Step, StressJob};

impl Job for StressJob {
    type Output = u32;
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<u32, String> {
        match self.step(cx) {
            Step::Return(result) => result,
            Step::Panic => std::panic::panic_any(STRESS_PANIC),
            Step::Wait(limit) => {
                if cx.token().wait_timeout(limit) {
                    Err("gave up".into())
                } else {
                    Ok(cx.attempt())
                }
            }
        }
    }
}

#[test]
fn accounting_balances_under_random_load_cancels_and_shutdowns() {
    stress::quiet_stress_panics();
    // Rounds of 25,000 offered jobs, each with its own drop policy, sink size, queue size
    // and shutdown, until 100,000 jobs were accepted.
    stress::run_rounds(stress::seed(), 100_000, |stack, queue_capacity| {
        ThreadPool::<StressJob>::builder()
            .name("stress")
            .workers(4)
            .queue_capacity(queue_capacity)
            .layers(stack.layers.clone())
            .build()
            .unwrap()
    });
}
