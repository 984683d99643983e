//! The delay queue: one task per pool, started the first time a job is put aside, that moves
//! jobs back to the ready queue at their time. It holds no concurrency slot, so a job waiting
//! for its retry backoff or its rate-limited start costs a map entry, not a worker.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use brigade_core::AsyncJob;

use crate::shared::{Shared, now};

/// How often the waiting list is offered again when nothing in this pool runs (the capacity
/// it waits for may be held by another pool sharing the layer).
const WAITING_RECHECK: Duration = Duration::from_millis(10);

pub(crate) async fn serve<J: AsyncJob>(shared: Arc<Shared<J>>) {
    loop {
        let mut woken = pin!(shared.timer_wake.notified());
        woken.as_mut().enable();
        let next = {
            let mut state = shared.lock();
            let now = now();
            let mut moved = false;
            while let Some(entry) = state.delayed.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let queued = entry.remove();
                state.queue.push_back(queued);
                moved = true;
            }
            let mut recheck = None;
            if !state.waiting.is_empty() && state.busy == 0 {
                if state.queue.is_empty() {
                    shared.reoffer_waiting(&mut state);
                    moved = true;
                }
                recheck = Some(brigade_core::instant_after(now, WAITING_RECHECK));
            }
            if moved {
                shared.grow_for_queue(&mut state);
                shared.job_ready.notify_waiters();
                shared.job_ready.notify_one();
            }
            if state.is_drained() && state.workers == 0 {
                state.timer_running = false;
                return;
            }
            let due = state.delayed.keys().next().map(|(at, _)| *at);
            match (due, recheck) {
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
