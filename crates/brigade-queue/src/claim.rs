use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::{DurableId, FencingToken, Lease};

/// What a worker asks a store for: up to `limit` due jobs of `queue`, leased to `worker`
/// for `lease`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_queue::ClaimRequest;
///
/// let request = ClaimRequest::new("emails", "host-a-4711", 8, Duration::from_secs(10));
/// assert_eq!(request.limit, 8);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ClaimRequest<'a> {
    /// The queue to claim from.
    pub queue: &'a str,
    /// Who claims: recorded with the lease, for operators.
    pub worker: &'a str,
    /// The most jobs to claim.
    pub limit: usize,
    /// How long the lease lasts unless renewed.
    pub lease: Duration,
}

impl<'a> ClaimRequest<'a> {
    /// A request for up to `limit` jobs of `queue`.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = brigade_queue::ClaimRequest::new("q", "w", 1, std::time::Duration::from_secs(1));
    /// assert_eq!(request.queue, "q");
    /// ```
    #[must_use]
    pub fn new(queue: &'a str, worker: &'a str, limit: usize, lease: Duration) -> Self {
        Self {
            queue,
            worker,
            limit,
            lease,
        }
    }
}

/// A job a worker claimed: its payload, which run this is, and the lease it holds.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use brigade_queue::{Claim, DurableId, FencingToken};
///
/// let claim = Claim {
///     id: DurableId::new(1),
///     token: FencingToken::new(1),
///     queue: "emails".into(),
///     payload: serde_json::json!({"to": "a@example.test"}),
///     attempt: 1,
///     max_attempts: 3,
///     priority: 0,
///     enqueued_at: SystemTime::now(),
/// };
/// assert_eq!(claim.lease().id, DurableId::new(1));
/// assert!(!claim.is_last_attempt());
/// ```
#[derive(Clone, Debug)]
pub struct Claim {
    /// The job.
    pub id: DurableId,
    /// This claim's fencing token.
    pub token: FencingToken,
    /// The queue it came from.
    pub queue: String,
    /// The payload, as enqueued.
    pub payload: Value,
    /// Which run this is, from 1; a lease that expired counted as a run.
    pub attempt: u32,
    /// The most runs the job gets.
    pub max_attempts: u32,
    /// Its priority.
    pub priority: i16,
    /// When the store accepted it.
    pub enqueued_at: SystemTime,
}

impl Claim {
    /// The lease this claim holds.
    ///
    /// # Examples
    ///
    /// See [`Claim`].
    #[must_use]
    pub fn lease(&self) -> Lease {
        Lease::new(self.id, self.token)
    }

    /// Whether a failure of this run ends the job dead.
    ///
    /// # Examples
    ///
    /// See [`Claim`].
    #[must_use]
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}
