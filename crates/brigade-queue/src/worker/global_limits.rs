use std::time::Duration;

use super::counters::{Count, WorkerCounters};
use super::fence::Fence;
use super::{Settings, call};
use crate::{GlobalConcurrency, GlobalRate, Lease, Store};

/// The limits every host shares, checked in the store before a claimed job starts.
#[derive(Clone, Debug)]
pub(crate) struct GlobalLimits {
    pub(crate) rate: Option<GlobalRate>,
    pub(crate) units: Option<GlobalConcurrency>,
}

/// How a job passed the global limits.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Passage {
    /// It may start; `holds_units` says whether it must give units back after.
    Open { holds_units: bool },
    /// Its run was stopped while it waited; `holds_units` as for `Open`.
    Stopped { holds_units: bool },
    /// It can never pass: heavier than the limit's whole capacity.
    Never(String),
}

const MIN_WAIT: Duration = Duration::from_millis(10);
const MAX_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two asks for units. A release wakes one waiter at once
/// (`Store::units_wakeup`), but units of a dead holder come back when its lease runs out,
/// which nothing announces, and a store's notifications can be lost: a waiter then
/// starts up to this long after the units came back. At a second, a crash of the
/// processes holding the units added that second to the redelivery of every job queued
/// behind them (5.1 s after a kill of every SQLite worker in a full fault run, against a
/// 4 s bound); a quarter second keeps each waiter to four store calls a second.
const UNITS_MAX_WAIT: Duration = Duration::from_millis(250);

impl GlobalLimits {
    pub(crate) fn is_open(&self) -> bool {
        self.rate.is_none() && self.units.is_none()
    }

    /// Waits for `weight` units, then for a rate token, stopping when the fence does.
    ///
    /// The token comes last, one store round trip before the start: a wait for units has
    /// no bound (they come back as other runs end), and a token taken before it would be
    /// spent in whatever later second the job finally starts in, on top of that second's
    /// own tokens, so the starts in a second could exceed the rate and burst.
    ///
    /// Each ask is one store call bounded by the worker's store timeout: a store that
    /// stops answering holds the run no longer than that before it asks again (or the
    /// fence stops it).
    pub(crate) async fn pass<S: Store>(
        &self,
        store: &S,
        lease: Lease,
        weight: u32,
        settings: &Settings,
        fence: &Fence,
        counters: &WorkerCounters,
    ) -> Passage {
        let holds_units = match &self.units {
            None => false,
            Some(units) if weight > units.capacity() => {
                return Passage::Never(format!(
                    "job weight {weight} exceeds the {} units of global limit {:?}",
                    units.capacity(),
                    units.key()
                ));
            }
            Some(units) => {
                if !take_units(store, units, lease, weight, settings, fence, counters).await {
                    return Passage::Stopped { holds_units: false };
                }
                true
            }
        };
        if let Some(rate) = &self.rate {
            if !take_token(store, rate, settings.store_timeout, fence, counters).await {
                return Passage::Stopped { holds_units };
            }
        }
        Passage::Open { holds_units }
    }
}

/// Waits for `weight` units of `units`, held under `lease`; false if the fence stopped the
/// run first. Asks again when the store says units came back, or after a wait that doubles
/// up to [`UNITS_MAX_WAIT`].
async fn take_units<S: Store>(
    store: &S,
    units: &GlobalConcurrency,
    lease: Lease,
    weight: u32,
    settings: &Settings,
    fence: &Fence,
    counters: &WorkerCounters,
) -> bool {
    let released = store.units_wakeup(units.key());
    let mut wait = MIN_WAIT;
    loop {
        // Waiting from before the ask: a release between a refusal and the wait below
        // still wakes this run. Dropped unused (the units were free), the wake-up goes to
        // the next waiter.
        let woken = released.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let acquired = store.acquire_units(units, lease, weight, settings.lease);
        match call(settings.store_timeout, acquired).await {
            Ok(true) => return true,
            Ok(false) => {}
            Err(error) => {
                counters.add(Count::StoreError, 1);
                tracing::warn!(%error, limit = units.key(), "global concurrency limit unavailable");
            }
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(wait) => {}
            () = fence.token().cancelled() => return false,
        }
        wait = (wait * 2).min(UNITS_MAX_WAIT);
    }
}

/// Waits for one token of `rate`; false if the fence stopped the run first.
async fn take_token<S: Store>(
    store: &S,
    rate: &GlobalRate,
    store_timeout: Duration,
    fence: &Fence,
    counters: &WorkerCounters,
) -> bool {
    loop {
        let wait = match call(store_timeout, store.take_rate(rate, 1)).await {
            Ok(grant) if grant.is_granted() => return true,
            Ok(grant) => grant
                .retry_after
                .clamp(Duration::from_micros(100), MAX_WAIT),
            Err(error) => {
                counters.add(Count::StoreError, 1);
                tracing::warn!(%error, limit = rate.key(), "global rate limit unavailable");
                MAX_WAIT / 4
            }
        };
        if !sleep_unless_stopped(wait, fence).await {
            return false;
        }
    }
}

/// Sleeps `wait`; false if the fence stopped the run first.
async fn sleep_unless_stopped(wait: Duration, fence: &Fence) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = fence.token().cancelled() => false,
    }
}
