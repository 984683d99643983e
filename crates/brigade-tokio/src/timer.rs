//! The delay queue: one task per pool, started the first time a job is put aside, that moves
//! jobs back to the ready queue at their time. It holds no concurrency slot, so a job waiting
//! for its retry backoff or its rate-limited start costs a map entry, not a worker.

use std::pin::pin;
use std::sync::Arc;

use brigade_core::AsyncJob;

use crate::shared::{Engine, Shared, now};

pub(crate) async fn serve<J: AsyncJob>(shared: Arc<Shared<J>>) {
    loop {
        let mut woken = pin!(shared.timer_wake.notified());
        woken.as_mut().enable();
        let next = {
            let mut state = shared.lock();
            let now = now();
            let mut moved = false;
            while let Some(task) = state.delayed.pop_due(now) {
                state.queue.push_back(task);
                moved = true;
            }
            if moved {
                shared.grow_for_queue(&mut state);
                shared.job_ready.notify_waiters();
                shared.job_ready.notify_one();
            }
            let offer_parked = state.offer_parked_at.is_some_and(|at| at <= now);
            if offer_parked {
                state.offer_parked_at = None;
                drop(state);
                // Outside the lock: the driver asks the layers and requeues what may start.
                shared.driver.offer_parked(&Engine::outside(&shared));
                continue;
            }
            if state.is_drained(shared.driver.parked()) && state.workers == 0 {
                state.timer_running = false;
                return;
            }
            match (state.delayed.next_at(), state.offer_parked_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = woken => {}
                }
            }
            None => woken.await,
        }
    }
}
