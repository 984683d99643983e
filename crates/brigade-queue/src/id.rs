use std::fmt;

/// The id a store gave a durable job when it accepted it; stable for the job's whole life.
///
/// # Examples
///
/// ```
/// use brigade_queue::DurableId;
///
/// let id = DurableId::new(42);
/// assert_eq!(id.get(), 42);
/// assert_eq!(id.to_string(), "#42");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurableId(i64);

impl DurableId {
    /// Wraps a store's id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::DurableId::new(7).get(), 7);
    /// ```
    #[must_use]
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    /// The number the store uses.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::DurableId::new(7).get(), 7);
    /// ```
    #[must_use]
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for DurableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The fencing token of one claim: a number the store issues afresh, and larger, for every
/// claim of every job.
///
/// Only the holder of the current token can record how a run ended; a worker whose lease
/// expired and whose job was claimed again holds a stale token, and its ack is refused.
///
/// # Examples
///
/// ```
/// use brigade_queue::FencingToken;
///
/// assert!(FencingToken::new(2) > FencingToken::new(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(i64);

impl FencingToken {
    /// Wraps a store's token.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::FencingToken::new(3).get(), 3);
    /// ```
    #[must_use]
    pub const fn new(token: i64) -> Self {
        Self(token)
    }

    /// The number the store uses.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::FencingToken::new(3).get(), 3);
    /// ```
    #[must_use]
    pub const fn get(self) -> i64 {
        self.0
    }
}

/// A claim on one job: its id and the fencing token of this claim. Every transition that
/// ends a run (ack, retry, dead, release) and every heartbeat names it.
///
/// # Examples
///
/// ```
/// use brigade_queue::{DurableId, FencingToken, Lease};
///
/// let lease = Lease::new(DurableId::new(1), FencingToken::new(9));
/// assert_eq!(lease.id, DurableId::new(1));
/// assert_eq!(lease.token, FencingToken::new(9));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The job held.
    pub id: DurableId,
    /// The claim's fencing token.
    pub token: FencingToken,
}

impl Lease {
    /// A lease on job `id` under `token`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_queue::{DurableId, FencingToken, Lease};
    /// let lease = Lease::new(DurableId::new(1), FencingToken::new(9));
    /// assert_eq!(lease.token.get(), 9);
    /// ```
    #[must_use]
    pub const fn new(id: DurableId, token: FencingToken) -> Self {
        Self { id, token }
    }
}
