use crate::{ErrorKind, JobResult, Stats};

/// What the handles of a run reported, counted by terminal state, to hold against the
/// pool's [`Stats`]: the "handles and counters agree" half of the accounting contract.
///
/// # Examples
///
/// ```
/// use brigade_core::testkit::Tally;
/// use brigade_core::{JobError, Stats};
/// use brigade_core::backend::job_errors;
///
/// let mut tally = Tally::new();
/// tally.record(&Ok::<u8, JobError<String>>(1));
/// tally.record(&Err::<u8, _>(job_errors::failed("no".to_string(), 1)));
/// assert_eq!(tally.counts().finished(), 2);
/// assert_eq!(tally.only_kinds(&[Some(brigade_core::ErrorKind::Failed), None]), Ok(()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    counts: Stats,
}

impl Tally {
    /// Nothing counted yet.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::testkit::Tally::new().counts().finished(), 0);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one handle's result, and returns its terminal state (`None` for success).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::ErrorKind;
    /// use brigade_core::backend::job_errors;
    /// let mut tally = brigade_core::testkit::Tally::new();
    /// let kind = tally.record(&Err::<(), _>(job_errors::dropped::<()>()));
    /// assert_eq!(kind, Some(ErrorKind::Dropped));
    /// ```
    pub fn record<T, E>(&mut self, result: &JobResult<T, E>) -> Option<ErrorKind> {
        let kind = result.as_ref().err().map(crate::JobError::kind);
        let counts = &mut self.counts;
        let counter = match kind {
            None => &mut counts.completed,
            Some(ErrorKind::Failed) => &mut counts.failed,
            Some(ErrorKind::Panicked) => &mut counts.panicked,
            Some(ErrorKind::Cancelled) => &mut counts.cancelled,
            Some(ErrorKind::TimedOut) => &mut counts.timed_out,
            Some(ErrorKind::DeadLettered) => &mut counts.dead_lettered,
            Some(ErrorKind::Dropped) => &mut counts.dropped,
            Some(ErrorKind::Returned) => &mut counts.returned,
        };
        *counter += 1;
        counts.submitted += 1;
        kind
    }

    /// The counts so far, as `Stats` (`submitted` is the number of results recorded).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::testkit::Tally::new().counts().is_balanced());
    /// ```
    #[must_use]
    pub fn counts(&self) -> Stats {
        self.counts
    }

    /// Panics, naming the first counter that differs, unless the pool's `stats` count every
    /// terminal state (and the accepted jobs) exactly as the handles reported them.
    ///
    /// # Panics
    ///
    /// When a counter differs; `context` starts the message.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::testkit::Tally;
    /// let mut tally = Tally::new();
    /// tally.record(&Ok::<(), brigade_core::JobError<()>>(()));
    /// let mut stats = tally.counts();
    /// stats.workers = 2; // gauges are not compared
    /// tally.assert_agrees_with(&stats, "example");
    /// ```
    pub fn assert_agrees_with(&self, stats: &Stats, context: &str) {
        let seen = &self.counts;
        let pairs = [
            ("submitted", seen.submitted, stats.submitted),
            ("completed", seen.completed, stats.completed),
            ("failed", seen.failed, stats.failed),
            ("panicked", seen.panicked, stats.panicked),
            ("cancelled", seen.cancelled, stats.cancelled),
            ("timed_out", seen.timed_out, stats.timed_out),
            ("dead_lettered", seen.dead_lettered, stats.dead_lettered),
            ("dropped", seen.dropped, stats.dropped),
            ("returned", seen.returned, stats.returned),
        ];
        for (name, from_handles, from_stats) in pairs {
            assert_eq!(
                from_handles, from_stats,
                "{context}: handles and counters disagree on {name}: {stats:?}"
            );
        }
    }

    /// Checks that every result was one of `kinds` (`None` for success).
    ///
    /// # Errors
    ///
    /// The first other terminal state seen.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::ErrorKind;
    /// use brigade_core::backend::job_errors;
    /// let mut tally = brigade_core::testkit::Tally::new();
    /// tally.record(&Err::<(), _>(job_errors::dropped::<()>()));
    /// assert_eq!(tally.only_kinds(&[None]), Err(ErrorKind::Dropped));
    /// ```
    pub fn only_kinds(&self, kinds: &[Option<ErrorKind>]) -> Result<(), ErrorKind> {
        let seen = &self.counts;
        let all = [
            (ErrorKind::Failed, seen.failed),
            (ErrorKind::Panicked, seen.panicked),
            (ErrorKind::Cancelled, seen.cancelled),
            (ErrorKind::TimedOut, seen.timed_out),
            (ErrorKind::DeadLettered, seen.dead_lettered),
            (ErrorKind::Dropped, seen.dropped),
            (ErrorKind::Returned, seen.returned),
        ];
        match all
            .into_iter()
            .find(|&(kind, count)| count > 0 && !kinds.contains(&Some(kind)))
        {
            Some((kind, _)) => Err(kind),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::job_errors;

    #[test]
    #[should_panic(expected = "disagree on dropped")]
    fn a_counter_the_handles_do_not_match_fails() {
        let mut tally = Tally::new();
        tally.record(&Err::<(), _>(job_errors::dropped::<()>()));
        let stats = Stats {
            submitted: 1,
            returned: 1,
            ..Stats::default()
        };
        tally.assert_agrees_with(&stats, "mismatch");
    }
}
