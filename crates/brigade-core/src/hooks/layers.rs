use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::time::Instant;

use super::{
    Admission, AfterRun, DeadLetter, DropReason, Middleware, QueueState, RunReport, Start,
};

/// The middleware of one pool, in the order they were added, with the rules that compose
/// their decisions. Backends call these methods; with no layers each is a branch on an
/// empty slice.
///
/// Composition, layer by layer in the order added:
///
/// - **admit**: the first layer that does not [`Accept`](Admission::Accept) decides;
///   a dropped job goes to that layer's [`dropped`](Middleware::dropped).
/// - **before start**: among the layers that [see starts](Middleware::sees_starts), the
///   first that does not say [`Start::Now`] decides, and those before it that granted the
///   start and [hold it](Middleware::holds_until_release) are
///   [`release`](Middleware::release)d. Put layers that take something when they grant
///   last, so a later deferral does not waste it: a weighted limit's units, then a rate
///   limit's token at the very end (units come back whole on a deferral; a spent token
///   does not).
/// - **deadline**: the earliest deadline of the layers that
///   [set deadlines](Middleware::sets_deadlines).
/// - **after run**: every layer sees every run; the first that does not say
///   [`Done`](AfterRun::Done) decides. Add retry before dead-letter: retry decides while
///   attempts remain, then dead-letter takes the job.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use brigade_core::hooks::{Admission, Layers, Middleware, QueueState};
///
/// struct RejectWhenFull;
/// impl<J, E> Middleware<J, E> for RejectWhenFull {
///     fn admit(&self, _: &J, queue: QueueState) -> Admission {
///         if queue.is_full() {
///             Admission::Reject(brigade_core::Rejection::new("queue full"))
///         } else {
///             Admission::Accept
///         }
///     }
/// }
///
/// let layers = Layers::<u32, String>::new().with(RejectWhenFull);
/// let full = QueueState { len: 2, capacity: 2 };
/// assert!(matches!(layers.admit(&7, full).0, Admission::Reject(_)));
/// ```
pub struct Layers<J, E> {
    layers: Arc<[Arc<dyn Middleware<J, E>>]>,
    /// The layers that see starts ([`Middleware::sees_starts`]), in order: the only ones
    /// asked before a start and at its release.
    starters: Arc<[Arc<dyn Middleware<J, E>>]>,
    /// The starters whose grant lasts until [`release`](Middleware::release)
    /// ([`Middleware::holds_until_release`]): the only ones released when a run ends.
    holders: Arc<[Arc<dyn Middleware<J, E>>]>,
    /// The layers that may set a deadline ([`Middleware::sets_deadlines`]).
    deadline_setters: Arc<[Arc<dyn Middleware<J, E>>]>,
    /// Whether any layer's `after_run` wants successful runs (asked once, when added).
    sees_successes: bool,
    /// Whether any layer's `admit` wants submitted jobs (asked once, when added).
    sees_submits: bool,
    /// Whether any layer's `after_run` reads when the run started (asked once, when added).
    times_runs: bool,
}

impl<J: 'static, E: 'static> Layers<J, E> {
    /// No layers.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::hooks::Layers::<(), ()>::new().is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Layers {
            layers: Arc::from(Vec::new()),
            starters: Arc::from(Vec::new()),
            holders: Arc::from(Vec::new()),
            deadline_setters: Arc::from(Vec::new()),
            sees_successes: false,
            sees_submits: false,
            times_runs: false,
        }
    }

    /// Adds `layer` after the others.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Layers, Middleware};
    /// struct Nothing;
    /// impl<J, E> Middleware<J, E> for Nothing {}
    /// assert_eq!(Layers::<(), ()>::new().with(Nothing).len(), 1);
    /// ```
    #[must_use]
    pub fn with(self, layer: impl Middleware<J, E>) -> Self {
        self.with_shared(Arc::new(layer))
    }

    /// Adds a layer shared with other pools (one rate limiter for several pools, say).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brigade_core::hooks::{Layers, Middleware};
    /// struct Nothing;
    /// impl<J, E> Middleware<J, E> for Nothing {}
    /// let shared: Arc<dyn Middleware<(), ()>> = Arc::new(Nothing);
    /// let a = Layers::new().with_shared(shared.clone());
    /// let b = Layers::new().with_shared(shared);
    /// assert_eq!(a.len() + b.len(), 2);
    /// ```
    #[must_use]
    pub fn with_shared(self, layer: Arc<dyn Middleware<J, E>>) -> Self {
        let sees_successes = self.sees_successes || layer.sees_successes();
        let sees_submits = self.sees_submits || layer.sees_submits();
        let times_runs = self.times_runs || layer.times_runs();
        let with_layer = |layers: &[Arc<dyn Middleware<J, E>>], wanted: bool| {
            let mut layers = layers.to_vec();
            if wanted {
                layers.push(Arc::clone(&layer));
            }
            Arc::from(layers)
        };
        let sees_starts = layer.sees_starts();
        Layers {
            starters: with_layer(&self.starters, sees_starts),
            holders: with_layer(&self.holders, sees_starts && layer.holds_until_release()),
            deadline_setters: with_layer(&self.deadline_setters, layer.sets_deadlines()),
            layers: with_layer(&self.layers, true),
            sees_successes,
            sees_submits,
            times_runs,
        }
    }

    /// Whether any layer's `after_run` is to see successful runs
    /// ([`Middleware::sees_successes`]); when none is, a successful run skips the after-run
    /// hooks and their clock read.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Layers, Middleware};
    /// struct Tally;
    /// impl<J, E> Middleware<J, E> for Tally {}
    /// assert!(!Layers::<(), ()>::new().sees_successes());
    /// assert!(Layers::<(), ()>::new().with(Tally).sees_successes());
    /// ```
    #[must_use]
    pub fn sees_successes(&self) -> bool {
        self.sees_successes
    }

    /// Whether any layer's `admit` is to see submitted jobs ([`Middleware::sees_submits`]);
    /// when none is, backends accept a submit without asking the layers or reading the
    /// queue's length.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Layers, Middleware};
    /// struct Screen;
    /// impl<J, E> Middleware<J, E> for Screen {}
    /// assert!(!Layers::<(), ()>::new().sees_submits());
    /// assert!(Layers::<(), ()>::new().with(Screen).sees_submits());
    /// ```
    #[must_use]
    pub fn sees_submits(&self) -> bool {
        self.sees_submits
    }

    /// Whether a run's start needs the clock: some layer [sees starts](Middleware::sees_starts)
    /// (they are asked with the time), [sets deadlines](Middleware::sets_deadlines) (from
    /// the start) or [times runs](Middleware::times_runs). When none does, backends start
    /// runs without reading it.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Layers, Middleware};
    /// struct Tally;
    /// impl<J, E> Middleware<J, E> for Tally {
    ///     fn sees_starts(&self) -> bool { false }
    ///     fn sets_deadlines(&self) -> bool { false }
    ///     fn times_runs(&self) -> bool { false }
    /// }
    /// assert!(!Layers::<(), ()>::new().with(Tally).needs_start_time());
    /// struct Stopwatch;
    /// impl<J, E> Middleware<J, E> for Stopwatch {}
    /// assert!(Layers::<(), ()>::new().with(Tally).with(Stopwatch).needs_start_time());
    /// ```
    #[must_use]
    pub fn needs_start_time(&self) -> bool {
        self.times_runs || !self.starters.is_empty() || !self.deadline_setters.is_empty()
    }

    /// Whether there are no layers (backends skip every hook then).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::hooks::Layers::<(), ()>::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// How many layers there are.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::hooks::Layers::<(), ()>::new().len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// The admission decision and the index of the layer that made it, if one did.
    ///
    /// The first refusal or drop decides. An eviction decides only if no later layer
    /// refuses or drops the job: evicting a queued job to make room for one that a later
    /// layer would refuse (a weighted limit's job heavier than its capacity, say) would
    /// lose the evicted job for nothing and queue one that may never start.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Admission, Layers, QueueState};
    /// let queue = QueueState { len: 0, capacity: 1 };
    /// assert_eq!(Layers::<(), ()>::new().admit(&(), queue), (Admission::Accept, None));
    /// ```
    pub fn admit(&self, job: &J, queue: QueueState) -> (Admission, Option<usize>) {
        let mut evicting = None;
        for (index, layer) in self.layers.iter().enumerate() {
            match layer.admit(job, queue) {
                Admission::Accept => {}
                Admission::EvictOldest => {
                    evicting.get_or_insert(index);
                }
                decision => return (decision, Some(index)),
            }
        }
        match evicting {
            Some(index) => (Admission::EvictOldest, Some(index)),
            None => (Admission::Accept, None),
        }
    }

    /// Gives a dropped job to the layer at `index` that dropped it.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{DropReason, Layers};
    /// // With no layer at the index the job is simply dropped.
    /// Layers::<u8, ()>::new().dropped(0, 7, DropReason::Newest);
    /// ```
    pub fn dropped(&self, index: usize, job: J, reason: DropReason) {
        if let Some(layer) = self.layers.get(index) {
            layer.dropped(job, reason);
        }
    }

    /// Whether the job may start now, asking the layers that see starts, and releasing
    /// earlier grants when a later layer defers or panics (the panic then goes on to the
    /// caller, with nothing left taken).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use brigade_core::hooks::{Layers, Start};
    /// assert_eq!(Layers::<(), ()>::new().before_start(&(), Instant::now()), Start::Now);
    /// ```
    pub fn before_start(&self, job: &J, now: Instant) -> Start {
        let Some((first, rest)) = self.starters.split_first() else {
            return Start::Now;
        };
        // Nothing is taken before the first layer: its panic goes on as it is.
        match first.before_start(job, now) {
            Start::Now => {}
            deferred => return deferred,
        }
        for (index, layer) in rest.iter().enumerate().map(|(i, layer)| (i + 1, layer)) {
            let decided = catch_unwind(AssertUnwindSafe(|| layer.before_start(job, now)));
            match decided {
                Ok(Start::Now) => {}
                Ok(deferred) => {
                    self.release_granted(index, job);
                    return deferred;
                }
                Err(panic) => {
                    self.release_granted(index, job);
                    resume_unwind(panic);
                }
            }
        }
        Start::Now
    }

    /// Releases what the starters before the one at `index` took for a start that one
    /// did not grant, those that hold their grant (a deferral or a panic, so rare that
    /// asking each layer again costs nothing worth keeping a list for).
    fn release_granted(&self, index: usize, job: &J) {
        let granted = self.starters[..index]
            .iter()
            .filter(|layer| layer.holds_until_release());
        release_each(granted, job);
    }

    /// Releases what the layers that hold their grants took for a run that has now ended.
    /// Every one of them is asked even if one panics; the first panic then goes on to the
    /// caller.
    ///
    /// # Examples
    ///
    /// ```
    /// brigade_core::hooks::Layers::<(), ()>::new().release(&());
    /// ```
    pub fn release(&self, job: &J) {
        release_each(self.holders.iter(), job);
    }

    /// Whether any layer holds its grant of a start until the run ends
    /// ([`Middleware::holds_until_release`]); when none does, a run's end skips
    /// [`release`](Self::release).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Layers, Middleware};
    /// struct Units;
    /// impl<J, E> Middleware<J, E> for Units {}
    /// assert!(!Layers::<(), ()>::new().holds_until_release());
    /// assert!(Layers::<(), ()>::new().with(Units).holds_until_release());
    /// ```
    #[must_use]
    pub fn holds_until_release(&self) -> bool {
        !self.holders.is_empty()
    }

    /// Whether any layer may set a deadline ([`Middleware::sets_deadlines`]); when none
    /// may, a start skips [`deadline`](Self::deadline).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Layers, Middleware};
    /// struct Limit;
    /// impl<J, E> Middleware<J, E> for Limit {}
    /// assert!(!Layers::<(), ()>::new().sets_deadlines());
    /// assert!(Layers::<(), ()>::new().with(Limit).sets_deadlines());
    /// ```
    #[must_use]
    pub fn sets_deadlines(&self) -> bool {
        !self.deadline_setters.is_empty()
    }

    /// The earliest deadline any layer sets for a run starting at `started`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// assert_eq!(brigade_core::hooks::Layers::<(), ()>::new().deadline(&(), Instant::now()), None);
    /// ```
    #[must_use]
    pub fn deadline(&self, job: &J, started: Instant) -> Option<Instant> {
        self.deadline_setters
            .iter()
            .filter_map(|layer| layer.deadline(job, started))
            .min()
    }

    /// Shows the run to every layer and returns the first decision that is not `Done`,
    /// with the index of the layer that made it (as [`admit`](Self::admit) does): a
    /// dead letter goes to that layer's sink. Successful and cancelled runs always end
    /// `Done`. A layer that panics has no say, and the layers after it still see the run
    /// (a retry policy's buggy predicate does not keep the job from the dead-letter queue
    /// after it, nor the later layers' tallies from the run).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use brigade_core::JobId;
    /// use brigade_core::hooks::{AfterRun, Layers, RunOutcome, RunReport};
    ///
    /// let now = Instant::now();
    /// let run = RunReport::<String> {
    ///     id: JobId::new(1), outcome: RunOutcome::Succeeded, attempt: 1, started: now, first_failure: None,
    /// };
    /// assert_eq!(Layers::<(), String>::new().after_run(&(), &run, now), (AfterRun::Done, None));
    /// ```
    pub fn after_run(
        &self,
        job: &J,
        run: &RunReport<'_, E>,
        now: Instant,
    ) -> (AfterRun, Option<usize>) {
        let succeeded = matches!(run.outcome, super::RunOutcome::Succeeded);
        let final_run = succeeded || matches!(run.outcome, super::RunOutcome::Cancelled(_));
        let mut decision = (AfterRun::Done, None);
        for (index, layer) in self.layers.iter().enumerate() {
            if succeeded && !layer.sees_successes() {
                continue;
            }
            // Every layer sees every run it asked for (policies keep tallies); the first
            // that does not say `Done` decides.
            let said = match catch_unwind(AssertUnwindSafe(|| layer.after_run(job, run, now))) {
                Ok(said) => said,
                Err(_) => {
                    tracing::error!(
                        id = run.id.get(),
                        layer = index,
                        "a middleware hook panicked in after_run; it has no say"
                    );
                    AfterRun::Done
                }
            };
            if !final_run && decision.0 == AfterRun::Done && said != AfterRun::Done {
                decision = (said, Some(index));
            }
        }
        decision
    }

    /// Hands `letter` to the sink of the layer at `index`.
    ///
    /// # Errors
    ///
    /// The letter, given back, when that layer's sink could not take it (or there is no
    /// layer at `index`); the job then ends as failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use brigade_core::JobId;
    /// use brigade_core::hooks::{DeadLetter, Layers};
    ///
    /// let now = SystemTime::now();
    /// let letter = DeadLetter {
    ///     job: 1u8, id: JobId::new(1), error: "e".into(), attempts: 1, first_failure: now, last_failure: now,
    /// };
    /// assert!(Layers::<u8, ()>::new().dead_letter(0, letter).is_err());
    /// ```
    pub fn dead_letter(&self, index: usize, letter: DeadLetter<J>) -> Result<(), DeadLetter<J>> {
        match self.layers.get(index) {
            Some(layer) => layer.dead_letter(letter),
            None => Err(letter),
        }
    }

    /// The name of the layer at `index`, for traces.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::hooks::Layers::<(), ()>::new().name(0), "none");
    /// ```
    #[must_use]
    pub fn name(&self, index: usize) -> &'static str {
        self.layers.get(index).map_or("none", |layer| layer.name())
    }
}

impl<J: 'static, E: 'static> Clone for Layers<J, E> {
    fn clone(&self) -> Self {
        Layers {
            layers: Arc::clone(&self.layers),
            starters: Arc::clone(&self.starters),
            holders: Arc::clone(&self.holders),
            deadline_setters: Arc::clone(&self.deadline_setters),
            sees_successes: self.sees_successes,
            sees_submits: self.sees_submits,
            times_runs: self.times_runs,
        }
    }
}

impl<J: 'static, E: 'static> Default for Layers<J, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<J: 'static, E: 'static> fmt::Debug for Layers<J, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.layers.iter().map(|layer| layer.name()))
            .finish()
    }
}

/// Asks each of `layers` to release what it took for `job`, every one of them even if one
/// panics; the first panic goes on afterwards, so a layer after a panicking one still
/// gives back its units.
fn release_each<'a, J: 'static, E: 'static>(
    layers: impl IntoIterator<Item = &'a Arc<dyn Middleware<J, E>>>,
    job: &J,
) {
    let mut first_panic = None;
    for layer in layers {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| layer.release(job))) {
            first_panic.get_or_insert(panic);
        }
    }
    if let Some(panic) = first_panic {
        resume_unwind(panic);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Takes one unit per start and gives it back per release.
    #[derive(Default)]
    struct Units(AtomicU32);

    impl Middleware<(), ()> for Units {
        fn before_start(&self, _: &(), _: Instant) -> Start {
            self.0.fetch_add(1, Ordering::SeqCst);
            Start::Now
        }
        fn release(&self, _: &()) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    struct Panics;

    impl Middleware<(), ()> for Panics {
        fn before_start(&self, _: &(), _: Instant) -> Start {
            panic!("a hook panicked before the start");
        }
        fn release(&self, _: &()) {
            panic!("a hook panicked in release");
        }
    }

    #[test]
    fn a_panic_before_the_start_gives_back_what_earlier_layers_took() {
        let units = Arc::new(Units::default());
        let layers = Layers::new().with_shared(units.clone()).with(Panics);
        let started = catch_unwind(AssertUnwindSafe(|| {
            layers.before_start(&(), Instant::now())
        }));
        assert!(started.is_err(), "the panic goes on to the caller");
        assert_eq!(units.0.load(Ordering::SeqCst), 0, "the unit came back");
    }

    /// Panics in every start and deadline hook, and says it has none: never asked.
    struct SaysNoStartsNoDeadlines;

    impl Middleware<(), ()> for SaysNoStartsNoDeadlines {
        fn before_start(&self, _: &(), _: Instant) -> Start {
            panic!("asked before a start it said it does not see");
        }
        fn release(&self, _: &()) {
            panic!("asked to release a start it said it does not see");
        }
        fn deadline(&self, _: &(), _: Instant) -> Option<Instant> {
            panic!("asked for a deadline it said it does not set");
        }
        fn sees_starts(&self) -> bool {
            false
        }
        fn sets_deadlines(&self) -> bool {
            false
        }
    }

    struct TenSeconds;

    impl Middleware<(), ()> for TenSeconds {
        fn deadline(&self, _: &(), started: Instant) -> Option<Instant> {
            Some(started + std::time::Duration::from_secs(10))
        }
    }

    #[test]
    fn layers_that_say_they_neither_see_starts_nor_set_deadlines_are_not_asked() {
        let units = Arc::new(Units::default());
        let layers = Layers::new()
            .with(SaysNoStartsNoDeadlines)
            .with_shared(units.clone())
            .with(TenSeconds)
            .with(SaysNoStartsNoDeadlines);
        let now = Instant::now();
        assert_eq!(layers.before_start(&(), now), Start::Now);
        assert_eq!(units.0.load(Ordering::SeqCst), 1, "the others still are");
        assert_eq!(
            layers.deadline(&(), now),
            Some(now + std::time::Duration::from_secs(10))
        );
        layers.release(&());
        assert_eq!(units.0.load(Ordering::SeqCst), 0);
        assert_eq!(layers.len(), 4, "every layer still sees runs and submits");
    }

    #[test]
    fn a_panic_in_release_does_not_keep_later_layers_from_releasing() {
        let units = Arc::new(Units::default());
        let layers = Layers::new().with(Panics).with_shared(units.clone());
        units.0.store(1, Ordering::SeqCst);
        let released = catch_unwind(AssertUnwindSafe(|| layers.release(&())));
        assert!(released.is_err(), "the panic goes on to the caller");
        assert_eq!(
            units.0.load(Ordering::SeqCst),
            0,
            "the later layer released"
        );
    }

    /// Counts its grants, spends them at the start, and never wants a release.
    #[derive(Default)]
    struct Spends(AtomicU32);

    impl Middleware<(), ()> for Spends {
        fn before_start(&self, _: &(), _: Instant) -> Start {
            self.0.fetch_add(1, Ordering::SeqCst);
            Start::Now
        }
        fn release(&self, _: &()) {
            panic!("released a start it said it does not hold");
        }
        fn holds_until_release(&self) -> bool {
            false
        }
    }

    /// Defers every start.
    struct Defers;

    impl Middleware<(), ()> for Defers {
        fn before_start(&self, _: &(), now: Instant) -> Start {
            Start::NotBefore(now + std::time::Duration::from_secs(1))
        }
    }

    #[test]
    fn layers_that_spend_their_grant_at_the_start_are_never_released() {
        let spends = Arc::new(Spends::default());
        let units = Arc::new(Units::default());
        let layers = Layers::new()
            .with_shared(spends.clone())
            .with_shared(units.clone());
        assert!(layers.holds_until_release(), "the units are held");
        assert_eq!(layers.before_start(&(), Instant::now()), Start::Now);
        layers.release(&());
        assert_eq!(units.0.load(Ordering::SeqCst), 0, "the units came back");

        let deferring = Layers::new()
            .with_shared(spends.clone())
            .with_shared(units.clone())
            .with(Defers);
        assert!(matches!(
            deferring.before_start(&(), Instant::now()),
            Start::NotBefore(_)
        ));
        assert_eq!(
            units.0.load(Ordering::SeqCst),
            0,
            "the deferral gave the units back"
        );
        assert_eq!(spends.0.load(Ordering::SeqCst), 2, "both starts were asked");

        let spending_only = Layers::new().with_shared(spends);
        assert!(!spending_only.holds_until_release());
        spending_only.release(&());
    }

    /// Answers every submit with one admission.
    struct Admits(Admission);

    impl Middleware<(), ()> for Admits {
        fn admit(&self, _: &(), _: QueueState) -> Admission {
            self.0.clone()
        }
    }

    #[test]
    fn a_later_refusal_or_drop_wins_over_an_earlier_eviction() {
        let queue = QueueState {
            len: 1,
            capacity: 1,
        };
        let refusal = Admission::Reject(crate::Rejection::new("too heavy"));
        let refusing = Layers::new()
            .with(Admits(Admission::EvictOldest))
            .with(Admits(refusal.clone()));
        assert_eq!(refusing.admit(&(), queue), (refusal, Some(1)));
        let dropping = Layers::new()
            .with(Admits(Admission::EvictOldest))
            .with(Admits(Admission::DropNewest));
        assert_eq!(dropping.admit(&(), queue), (Admission::DropNewest, Some(1)));
        let evicting = Layers::new()
            .with(Admits(Admission::Accept))
            .with(Admits(Admission::EvictOldest))
            .with(Admits(Admission::EvictOldest));
        assert_eq!(
            evicting.admit(&(), queue),
            (Admission::EvictOldest, Some(1)),
            "the first evicting layer is the one told of the eviction"
        );
    }
}
