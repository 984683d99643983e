//! A worker's own copies of what its jobs' contexts hold of the pool.

use std::sync::Arc;

use crate::CancellationToken;
use crate::cancel::KnownToken;

/// What one worker keeps of its pool for the contexts of the jobs it runs: its own copy of
/// the pool's name and a child of the pool's token. A context holds both, so each run
/// counts a reference up and down on each; with the pool's own, every worker would count
/// on the same two cache lines.
///
/// # Examples
///
/// ```
/// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
/// let seat = driver.seat();
/// driver.token().cancel();
/// assert!(seat.token().is_cancelled());
/// assert_eq!(seat.name().as_ref(), "p");
/// ```
#[derive(Clone, Debug)]
pub struct WorkerSeat {
    name: Arc<str>,
    token: KnownToken,
}

impl WorkerSeat {
    pub(super) fn new(name: Arc<str>, token: KnownToken) -> Self {
        Self { name, token }
    }

    /// The pool's name, this worker's copy.
    ///
    /// # Examples
    ///
    /// See [`WorkerSeat`].
    #[must_use]
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// A child of the pool's token: cancelled when the pool's is.
    ///
    /// # Examples
    ///
    /// See [`WorkerSeat`].
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        self.token.token()
    }

    /// Whether a job cancelled the seat's token itself (the pool's cancel aside).
    #[inline]
    pub(super) fn is_cancelled_alone(&self) -> bool {
        self.token.is_cancelled_alone()
    }
}
