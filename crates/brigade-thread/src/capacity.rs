//! Jobs waiting for capacity (`Start::WhenCapacityFrees`): parked off the workers, offered
//! again when a run ends.
//!
//! Parking and a run's end form a Dekker handshake: a parking worker publishes its job and
//! then looks for runs in progress; an ending run leaves `running` and then looks for
//! parked jobs. With a SeqCst fence on both sides, either the run sees the parked job (and
//! offers it again) or the parker sees no run in progress and asks for the timer fallback.
//! A parked job is never left waiting for a run end that will not come.
//!
//! Until the first job parks, runs skip all of this (two contended read-modify-writes and a
//! fence per run). A run that started before then is not counted; a parker that misses it
//! asks for the fallback, which costs one wake-up.

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use crate::sync::{Mutex, lock};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct CapacityWaits<T> {
    waiting: Mutex<Vec<T>>,
    len: AtomicUsize,
    /// Set when the first job parks.
    enabled: AtomicBool,
    /// Runs in progress that started after `enabled` was set.
    running: AtomicUsize,
}

/// A run in progress, as far as parking is concerned.
#[derive(Debug)]
#[must_use = "hand it back to `run_ended`"]
pub(crate) struct RunTicket {
    counted: bool,
}

impl<T> CapacityWaits<T> {
    pub(crate) fn new() -> Self {
        CapacityWaits {
            waiting: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
            enabled: AtomicBool::new(false),
            running: AtomicUsize::new(0),
        }
    }

    /// A run starts.
    pub(crate) fn run_started(&self) -> RunTicket {
        let counted = self.enabled.load(Ordering::Relaxed);
        if counted {
            self.running.fetch_add(1, Ordering::SeqCst);
        }
        RunTicket { counted }
    }

    /// A run ended: the parked jobs to offer again (none, without allocating, usually).
    pub(crate) fn run_ended(&self, ticket: RunTicket) -> Vec<T> {
        if ticket.counted {
            self.running.fetch_sub(1, Ordering::SeqCst);
        } else if !self.enabled.load(Ordering::Relaxed) {
            return Vec::new();
        }
        // Pairs with the fence in `park` (module docs).
        fence(Ordering::SeqCst);
        if self.len.load(Ordering::SeqCst) == 0 {
            return Vec::new();
        }
        self.take_all()
    }

    /// Parks `item`; returns whether no run was seen in progress, so the caller must arm
    /// the timer fallback to offer it again.
    pub(crate) fn park(&self, item: T) -> bool {
        self.enabled.store(true, Ordering::Relaxed);
        {
            let mut waiting = lock(&self.waiting);
            waiting.push(item);
            self.len.fetch_add(1, Ordering::SeqCst);
        }
        // Pairs with the fence in `run_ended` (module docs).
        fence(Ordering::SeqCst);
        self.running.load(Ordering::SeqCst) == 0
    }

    /// Every parked job.
    pub(crate) fn take_all(&self) -> Vec<T> {
        let mut waiting = lock(&self.waiting);
        let items = std::mem::take(&mut *waiting);
        self.len.fetch_sub(items.len(), Ordering::SeqCst);
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_offer_parked_jobs_again_and_idle_parks_ask_for_the_fallback() {
        let waits = CapacityWaits::new();
        let before = waits.run_started();
        assert!(waits.park(1), "no counted run in progress: fallback");
        let during = waits.run_started();
        assert!(!waits.park(2), "a counted run will offer it");
        assert_eq!(waits.run_ended(before), [1, 2]);
        assert!(waits.run_ended(during).is_empty());
        assert!(waits.take_all().is_empty());
    }
}

/// Model: a job parking as the last run ends is offered again or gets the fallback.
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use loom::sync::Arc;

    use super::*;

    fn parking_racing_a_run_end(enabled_before_the_run: bool) {
        loom::model(move || {
            let waits = Arc::new(CapacityWaits::new());
            if enabled_before_the_run {
                waits.enabled.store(true, Ordering::Relaxed);
            }
            let ticket = waits.run_started();
            let runner = {
                let waits = waits.clone();
                loom::thread::spawn(move || waits.run_ended(ticket))
            };
            let fallback = waits.park(7u8);
            let offered = runner.join().unwrap();
            assert!(
                fallback || offered == [7],
                "the parked job waits for nothing (offered {offered:?})"
            );
        });
    }

    #[test]
    fn loom_parking_racing_a_counted_run_end_strands_nothing() {
        parking_racing_a_run_end(true);
    }

    #[test]
    fn loom_parking_racing_an_uncounted_run_end_strands_nothing() {
        parking_racing_a_run_end(false);
    }
}
