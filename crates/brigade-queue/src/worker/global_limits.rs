use std::time::Duration;

use super::counters::{Count, WorkerCounters};
use super::fence::Fence;
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
    /// Its run was stopped while it waited.
    Stopped,
    /// It can never pass: heavier than the limit's whole capacity.
    Never(String),
}

const MIN_WAIT: Duration = Duration::from_millis(10);
const MAX_WAIT: Duration = Duration::from_secs(1);

impl GlobalLimits {
    pub(crate) fn is_open(&self) -> bool {
        self.rate.is_none() && self.units.is_none()
    }

    /// Waits for a rate token, then for `weight` units, stopping when the fence does.
    pub(crate) async fn pass<S: Store>(
        &self,
        store: &S,
        lease: Lease,
        weight: u32,
        lease_for: Duration,
        fence: &Fence,
        counters: &WorkerCounters,
    ) -> Passage {
        if let Some(units) = &self.units {
            if weight > units.capacity() {
                return Passage::Never(format!(
                    "job weight {weight} exceeds the {} units of global limit {:?}",
                    units.capacity(),
                    units.key()
                ));
            }
        }
        if let Some(rate) = &self.rate {
            loop {
                let wait = match store.take_rate(rate, 1).await {
                    Ok(grant) if grant.is_granted() => break,
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
                    return Passage::Stopped;
                }
            }
        }
        let Some(units) = &self.units else {
            return Passage::Open { holds_units: false };
        };
        let mut wait = MIN_WAIT;
        loop {
            match store.acquire_units(units, lease, weight, lease_for).await {
                Ok(true) => return Passage::Open { holds_units: true },
                Ok(false) => {}
                Err(error) => {
                    counters.add(Count::StoreError, 1);
                    tracing::warn!(%error, limit = units.key(), "global concurrency limit unavailable");
                }
            }
            if !sleep_unless_stopped(wait, fence).await {
                return Passage::Stopped;
            }
            wait = (wait * 2).min(MAX_WAIT);
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
