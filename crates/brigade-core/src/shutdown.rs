use std::fmt;

/// What a shutdown did: how the jobs still in the pool ended, and the jobs that never
/// started, handed back to the caller.
///
/// Graceful shutdowns run everything, so their report has nothing to hand back. A shutdown
/// with a deadline runs what it can, cancels what still runs at the deadline and hands back
/// what never started; an immediate shutdown hands back everything not yet started.
///
/// # Examples
///
/// ```
/// let mut report = brigade_core::ShutdownReport::default();
/// report.unstarted.push("resize img009");
/// assert!(!report.is_clean());
/// assert_eq!(report.unstarted.len(), 1);
/// ```
#[non_exhaustive]
pub struct ShutdownReport<J> {
    /// Jobs that reached a terminal state while the shutdown waited for them.
    pub finished: u64,
    /// Jobs still running at the deadline whose tokens were cancelled.
    pub cancelled: u64,
    /// Whether the deadline passed before the pool emptied.
    pub deadline_passed: bool,
    /// Jobs that never started (queued, or waiting to run again), in queue order.
    /// Their handles end as [`Returned`](crate::ErrorKind::Returned).
    pub unstarted: Vec<J>,
}

impl<J> ShutdownReport<J> {
    /// Whether the pool emptied without cancelling or handing back anything.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::ShutdownReport::<()>::default().is_clean());
    /// ```
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.cancelled == 0 && !self.deadline_passed && self.unstarted.is_empty()
    }
}

impl<J> Default for ShutdownReport<J> {
    fn default() -> Self {
        ShutdownReport {
            finished: 0,
            cancelled: 0,
            deadline_passed: false,
            unstarted: Vec::new(),
        }
    }
}

impl<J> fmt::Debug for ShutdownReport<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownReport")
            .field("finished", &self.finished)
            .field("cancelled", &self.cancelled)
            .field("deadline_passed", &self.deadline_passed)
            .field("unstarted", &self.unstarted.len())
            .finish()
    }
}
