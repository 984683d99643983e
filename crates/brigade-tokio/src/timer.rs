//! The delay queue: one task per pool, started the first time a job is put aside, that moves
//! jobs back to the ready queue at their time. It holds no concurrency slot, so a job waiting
//! for its retry backoff or its rate-limited start costs a map entry, not a worker.
//!
//! The timer may be the pool's last task: a pool whose workers retired (`min_workers(0)`)
//! while a job waits for its time, or for capacity another pool holds, has only it. So it
//! carries a guard, as a worker does, for a runtime that shuts down under it.

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

/// The timer's place in the pool, given up however its task ends. Tokio drops a task whose
/// runtime shuts down, before its first poll or at any await: made before the task is
/// spawned and moved into it, this tells the pool even then (`Shared::timer_dropped`), so
/// the jobs waiting in its care are handed back rather than left waiting for a timer that
/// is gone.
pub(crate) struct Serving<J: AsyncJob> {
    shared: Arc<Shared<J>>,
    /// The timer left by its own decision (`TimerTurn::Exit`): nothing waits for it.
    exited: bool,
}

impl<J: AsyncJob> Serving<J> {
    /// The timer the schedule has just marked running (`Schedule::start_timer`).
    pub(crate) fn new(shared: Arc<Shared<J>>) -> Self {
        Serving {
            shared,
            exited: false,
        }
    }
}

impl<J: AsyncJob> Drop for Serving<J> {
    fn drop(&mut self) {
        if !self.exited {
            self.shared.timer_dropped();
        }
    }
}

pub(crate) async fn serve<J: AsyncJob>(mut timer: Serving<J>) {
    let shared = Arc::clone(&timer.shared);
    loop {
        let mut woken = pin!(shared.timer_wake());
        woken.as_mut().enable();
        match shared.timer_turn() {
            // Outside the lock: the driver asks the layers and requeues what may start.
            TimerTurn::OfferParked => shared.driver.offer_parked(&Engine::outside(&shared)),
            TimerTurn::EndCancelled(tasks) => shared.end_cancelled(tasks),
            TimerTurn::Exit => {
                // `timer_turn` marked the timer stopped.
                timer.exited = true;
                return;
            }
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
