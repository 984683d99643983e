//! The delay queue: one task per pool, started the first time a job is put aside, that moves
//! jobs back to the ready queue at their time. It holds no concurrency slot, so a job waiting
//! for its retry backoff or its rate-limited start costs a map entry, not a worker.

use std::pin::pin;
use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};

use brigade_core::AsyncJob;

use crate::shared::{Engine, Shared, TimerTurn};

/// What a cancel of a job waiting off the workers wakes (core's `CancelWatch`): the timer,
/// started if it does not run yet, which takes the job out. The pool is held weakly: the
/// waker sits in jobs' tokens, which may outlive it.
struct CancelNudge<J: AsyncJob>(Weak<Shared<J>>);

impl<J: AsyncJob> Wake for CancelNudge<J> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(shared) = self.0.upgrade() {
            shared.wake_timer();
        }
    }
}

/// The waker the pool gives core's `CancelWatch`.
pub(crate) fn cancel_waker<J: AsyncJob>(shared: &Arc<Shared<J>>) -> Waker {
    Waker::from(Arc::new(CancelNudge(Arc::downgrade(shared))))
}

pub(crate) async fn serve<J: AsyncJob>(shared: Arc<Shared<J>>) {
    loop {
        let mut woken = pin!(shared.timer_wake());
        woken.as_mut().enable();
        match shared.timer_turn() {
            // Outside the lock: the driver asks the layers and requeues what may start.
            TimerTurn::OfferParked => shared.driver.offer_parked(&Engine::outside(&shared)),
            TimerTurn::EndCancelled(tasks) => shared.end_cancelled(tasks),
            TimerTurn::Exit => return,
            TimerTurn::Sleep(Some(at)) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = woken => {}
                }
            }
            TimerTurn::Sleep(None) => woken.await,
        }
    }
}
