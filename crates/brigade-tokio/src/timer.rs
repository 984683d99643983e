//! The delay queue: one task per pool, started the first time a job is put aside, that moves
//! jobs back to the ready queue at their time. It holds no concurrency slot, so a job waiting
//! for its retry backoff or its rate-limited start costs a map entry, not a worker.

use std::pin::pin;
use std::sync::Arc;

use brigade_core::AsyncJob;

use crate::shared::{Engine, Shared, TimerTurn};

pub(crate) async fn serve<J: AsyncJob>(shared: Arc<Shared<J>>) {
    loop {
        let mut woken = pin!(shared.timer_wake());
        woken.as_mut().enable();
        match shared.timer_turn() {
            // Outside the lock: the driver asks the layers and requeues what may start.
            TimerTurn::OfferParked => shared.driver.offer_parked(&Engine::outside(&shared)),
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
