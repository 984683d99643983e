/// How many jobs a bulk run (`map`, `map_unordered`) keeps in flight, and when it tops
/// them up.
///
/// Once it is full, a run tops up only when a sixteenth of its limit (at least one job)
/// has come back, and then fills to the limit again. Topping up after every result keeps
/// the caller's thread in lockstep with the workers: one submit and one take at a time, on
/// the lines the workers are writing. Runs of submits and runs of takes made the thread
/// pool's noop `map` 40% faster on two cores (docs/benchmarks.md), and keep at least
/// fifteen sixteenths of the limit in flight.
///
/// # Examples
///
/// ```
/// use brigade_core::backend::InFlightLimit;
///
/// let limit = InFlightLimit::new(64);
/// assert_eq!(limit.top_up(0), 64);
/// assert_eq!(limit.top_up(61), 0, "3 free, a run is 4");
/// assert_eq!(limit.top_up(60), 4);
/// assert!(limit.has_room(63) && !limit.has_room(64));
/// assert_eq!(InFlightLimit::new(0).top_up(0), 1, "0 is taken as 1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlightLimit {
    max: usize,
    run: usize,
}

impl InFlightLimit {
    /// At most `max` in flight; 0 is taken as 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::InFlightLimit;
    ///
    /// assert_eq!(InFlightLimit::new(8).top_up(0), 8);
    /// assert_eq!(InFlightLimit::new(0).top_up(0), 1);
    /// ```
    #[must_use]
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        InFlightLimit {
            max,
            run: (max / 16).max(1),
        }
    }

    /// How many jobs a run with `in_flight` of them should add now: every free place once
    /// a run's worth is free, none before.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::InFlightLimit;
    ///
    /// let limit = InFlightLimit::new(4);
    /// assert_eq!(limit.top_up(3), 1, "below 32, every free place is a run");
    /// assert_eq!(limit.top_up(4), 0);
    /// ```
    #[must_use]
    pub fn top_up(&self, in_flight: usize) -> usize {
        let free = self.max.saturating_sub(in_flight);
        if free >= self.run { free } else { 0 }
    }

    /// Whether one more job fits: for a run whose jobs may not all go in at once (an
    /// input that is not ready), topping up again after a pause.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::InFlightLimit;
    ///
    /// assert!(InFlightLimit::new(2).has_room(1));
    /// assert!(!InFlightLimit::new(2).has_room(2));
    /// ```
    #[must_use]
    pub fn has_room(&self, in_flight: usize) -> bool {
        in_flight < self.max
    }
}
