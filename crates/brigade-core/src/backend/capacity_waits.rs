//! Jobs waiting for capacity (`Start::WhenCapacityFrees`): parked off the workers, in
//! arrival order, and started from the front as runs end.
//!
//! **First in, first out**, as Go's `x/sync/semaphore` serves its waiters: while any job
//! waits, a job arriving at its start queues behind it instead of asking the layers, and a
//! run's end offers the parked jobs from the front, stopping at the first that still does
//! not fit. A heavy job at the front is therefore not overtaken by a stream of light ones.
//!
//! **No job left waiting.** Parking and a run's end form a Dekker handshake: a parking job
//! is published and then the parker looks for runs in progress; an ending run leaves
//! `running` and then looks for parked jobs. With a SeqCst fence on both sides, either the
//! run sees the parked job (and offers it) or the parker sees no run in progress and asks
//! its backend for a fallback offer (a timer). Until the first job parks, runs skip all of
//! this (two contended read-modify-writes and a fence per run); a run that started before
//! then is not counted, and a parker that misses it asks for the fallback.

use std::collections::VecDeque;

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use crate::sync::{Mutex, lock};

/// See the module docs.
///
/// # Examples
///
/// ```
/// use brigade_core::backend::CapacityWaits;
///
/// let waits = CapacityWaits::new();
/// assert!(waits.park("heavy"), "no run in progress: ask for the fallback");
/// let run = waits.run_started();
/// assert!(!waits.park("light"), "a run in progress will offer it");
/// assert!(waits.has_waiters());
/// assert!(waits.run_ended(run));
/// // The front does not fit yet: nothing behind it may pass.
/// assert!(waits.start_from_front(|job| (*job != "heavy").then_some(())).is_empty());
/// let started = waits.start_from_front(|_| Some(()));
/// assert_eq!(started.iter().map(|(job, ())| *job).collect::<Vec<_>>(), ["heavy", "light"]);
/// ```
#[derive(Debug)]
pub struct CapacityWaits<T> {
    parked: Mutex<VecDeque<T>>,
    len: AtomicUsize,
    /// Set when the first job parks.
    enabled: AtomicBool,
    /// Runs in progress that started after `enabled` was set.
    running: AtomicUsize,
}

/// A run in progress, as far as parking is concerned: hand it back to
/// [`CapacityWaits::run_ended`].
///
/// # Examples
///
/// ```
/// let waits = brigade_core::backend::CapacityWaits::<()>::new();
/// let ticket = waits.run_started();
/// assert!(!waits.run_ended(ticket));
/// ```
#[derive(Debug)]
#[must_use = "hand it back to `run_ended`"]
pub struct RunTicket {
    counted: bool,
}

impl<T> Default for CapacityWaits<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> CapacityWaits<T> {
    /// No job waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!brigade_core::backend::CapacityWaits::<u8>::new().has_waiters());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        CapacityWaits {
            parked: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            enabled: AtomicBool::new(false),
            running: AtomicUsize::new(0),
        }
    }

    /// A run starts.
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::<u8>::new();
    /// let ticket = waits.run_started();
    /// # let _ = waits.run_ended(ticket);
    /// ```
    pub fn run_started(&self) -> RunTicket {
        let counted = self.enabled.load(Ordering::Relaxed);
        if counted {
            self.running.fetch_add(1, Ordering::SeqCst);
        }
        RunTicket { counted }
    }

    /// A run ended: whether jobs are parked, so the caller should offer them
    /// ([`start_from_front`](Self::start_from_front)). Costs one relaxed load until the
    /// first job parks.
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::new();
    /// let ticket = waits.run_started();
    /// waits.park(1u8);
    /// assert!(waits.run_ended(ticket));
    /// ```
    #[must_use]
    pub fn run_ended(&self, ticket: RunTicket) -> bool {
        if ticket.counted {
            self.running.fetch_sub(1, Ordering::SeqCst);
        } else if !self.enabled.load(Ordering::Relaxed) {
            return false;
        }
        // Pairs with the fence in `park` (module docs).
        fence(Ordering::SeqCst);
        self.len.load(Ordering::SeqCst) != 0
    }

    /// Whether any job is parked: a job arriving at its start then parks behind it.
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::new();
    /// waits.park(());
    /// assert!(waits.has_waiters());
    /// ```
    #[must_use]
    pub fn has_waiters(&self) -> bool {
        self.enabled.load(Ordering::Relaxed) && self.len.load(Ordering::SeqCst) != 0
    }

    /// How many jobs are parked.
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::new();
    /// waits.park(());
    /// assert_eq!(waits.len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no job is parked.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::backend::CapacityWaits::<()>::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parks `item` at the back; returns whether no run was seen in progress, so the caller
    /// must arrange a fallback offer (a timer).
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::new();
    /// assert!(waits.park('a'), "nothing runs: ask for the fallback");
    /// ```
    pub fn park(&self, item: T) -> bool {
        self.enabled.store(true, Ordering::Relaxed);
        {
            let mut parked = lock(&self.parked);
            parked.push_back(item);
            self.len.fetch_add(1, Ordering::SeqCst);
        }
        // Pairs with the fence in `run_ended` (module docs).
        fence(Ordering::SeqCst);
        self.running.load(Ordering::SeqCst) == 0
    }

    /// Takes parked jobs from the front, in arrival order, while `start` lets them go
    /// (`Some`); the first it keeps waiting (`None`) stays at the front and ends the walk.
    /// `start` runs under this list's lock: it must not park or offer again.
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::new();
    /// for weight in [3u8, 9, 1] {
    ///     waits.park(weight);
    /// }
    /// let mut free = 5u8;
    /// let started = waits.start_from_front(|&weight| {
    ///     free = free.checked_sub(weight)?;
    ///     Some(())
    /// });
    /// assert_eq!(started.len(), 1, "9 does not fit, so 1 waits behind it");
    /// assert_eq!(waits.len(), 2);
    /// ```
    pub fn start_from_front<D>(&self, mut start: impl FnMut(&T) -> Option<D>) -> Vec<(T, D)> {
        let mut parked = lock(&self.parked);
        let mut started = Vec::new();
        while let Some(front) = parked.front() {
            let Some(decision) = start(front) else { break };
            if let Some(item) = parked.pop_front() {
                started.push((item, decision));
            }
        }
        self.len.fetch_sub(started.len(), Ordering::SeqCst);
        started
    }

    /// Whether jobs are parked and no counted run is in progress whose end would offer them
    /// their start: the caller must arrange a fallback offer (a timer).
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::new();
    /// waits.park(());
    /// assert!(waits.is_stranded());
    /// let run = waits.run_started();
    /// assert!(!waits.is_stranded());
    /// # let _ = waits.run_ended(run);
    /// ```
    #[must_use]
    pub fn is_stranded(&self) -> bool {
        fence(Ordering::SeqCst);
        self.len.load(Ordering::SeqCst) != 0 && self.running.load(Ordering::SeqCst) == 0
    }

    /// The parked jobs `pick` picks, in arrival order, taken out of the line (jobs
    /// cancelled while they waited); the others keep their order.
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::new();
    /// for n in [1, 2, 3] {
    ///     waits.park(n);
    /// }
    /// assert_eq!(waits.take_where(|&n| n != 2), [1, 3]);
    /// assert_eq!(waits.len(), 1);
    /// ```
    #[must_use]
    pub fn take_where(&self, mut pick: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut parked = lock(&self.parked);
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(parked.len());
        for item in parked.drain(..) {
            if pick(&item) {
                taken.push(item);
            } else {
                kept.push_back(item);
            }
        }
        *parked = kept;
        self.len.fetch_sub(taken.len(), Ordering::SeqCst);
        taken
    }

    /// Every parked job, in arrival order.
    ///
    /// # Examples
    ///
    /// ```
    /// let waits = brigade_core::backend::CapacityWaits::new();
    /// waits.park(1);
    /// waits.park(2);
    /// assert_eq!(waits.take_all(), [1, 2]);
    /// ```
    #[must_use]
    pub fn take_all(&self) -> Vec<T> {
        let mut parked = lock(&self.parked);
        let items: Vec<T> = parked.drain(..).collect();
        self.len.fetch_sub(items.len(), Ordering::SeqCst);
        items
    }
}

#[cfg(all(test, not(brigade_loom)))]
mod tests {
    use super::*;

    #[test]
    fn runs_offer_parked_jobs_and_idle_parks_ask_for_the_fallback() {
        let waits = CapacityWaits::new();
        let before = waits.run_started();
        assert!(waits.park(1), "no counted run in progress: fallback");
        let during = waits.run_started();
        assert!(!waits.park(2), "a counted run will offer it");
        assert!(waits.run_ended(before));
        let started: Vec<_> = waits
            .start_from_front(|_| Some(()))
            .into_iter()
            .map(|(item, ())| item)
            .collect();
        assert_eq!(started, [1, 2]);
        assert!(!waits.run_ended(during));
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
                loom::thread::spawn(move || {
                    if waits.run_ended(ticket) {
                        waits.start_from_front(|_| Some(())).len()
                    } else {
                        0
                    }
                })
            };
            let fallback = waits.park(7u8);
            let offered = runner.join().unwrap();
            assert!(
                fallback || offered == 1,
                "the parked job waits for nothing (offered {offered})"
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
