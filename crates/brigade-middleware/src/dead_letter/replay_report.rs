use std::fmt;

use brigade_core::{JobHandle, Rejection};

/// What a replay did: the handles of the jobs the pool accepted, and how many letters
/// stayed in the sink because the pool refused them.
///
/// # Examples
///
/// ```
/// let report = brigade_middleware::ReplayReport::<u32, String>::default();
/// assert!(report.replayed.is_empty() && report.kept == 0 && !report.closed);
/// ```
pub struct ReplayReport<T, E> {
    /// Handles of the resubmitted jobs, in the letters' order.
    pub replayed: Vec<JobHandle<T, E>>,
    /// Letters left in the sink because the pool refused their job.
    pub kept: usize,
    /// Why the pool's middleware refused jobs, one entry per refusal.
    pub rejections: Vec<Rejection>,
    /// Whether the pool was shut down, which stopped the replay early.
    pub closed: bool,
    /// Whether the pool could not block on the calling thread (it drives a current-thread
    /// async runtime), which stopped the replay early; on a multi-thread runtime a replay
    /// into a tokio pool works from async code.
    pub in_async_context: bool,
}

impl<T, E> Default for ReplayReport<T, E> {
    fn default() -> Self {
        ReplayReport {
            replayed: Vec::new(),
            kept: 0,
            rejections: Vec::new(),
            closed: false,
            in_async_context: false,
        }
    }
}

impl<T, E> fmt::Debug for ReplayReport<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayReport")
            .field("replayed", &self.replayed.len())
            .field("kept", &self.kept)
            .field("rejections", &self.rejections)
            .field("closed", &self.closed)
            .field("in_async_context", &self.in_async_context)
            .finish()
    }
}
