//! How long the store waits for a lock another session holds (a queue's depth lock, the
//! migration lock), and how long its own transactions may sit idle.
//!
//! A session that holds such a lock and stops (a paused process, a host cut off from the
//! server) keeps it until the server notices, which for a partitioned client can take as
//! long as the kernel's TCP timeouts. Waiting for it without a bound would hold one pooled
//! connection per waiting call, on every host, until the pools run dry. So every wait ends
//! after the bound with PostgreSQL's lock-timeout error (55P03), a transient
//! `StoreError::Unavailable` to the caller, and a transaction of the store's own that sits
//! idle as long is ended by the server, releasing what it holds.

use std::time::Duration;

use crate::store::MAX_ACQUIRE_TIMEOUT;

/// The bound, in whole milliseconds: the unit of PostgreSQL's `lock_timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LockWait {
    millis: u64,
}

impl LockWait {
    /// At least a millisecond (zero would turn the bound off) and at most
    /// [`MAX_ACQUIRE_TIMEOUT`].
    pub(crate) fn new(bound: Duration) -> Self {
        let millis = bound.min(MAX_ACQUIRE_TIMEOUT).as_millis().max(1);
        Self {
            millis: u64::try_from(millis).unwrap_or(u64::MAX),
        }
    }

    /// The bound as a setting's value.
    pub(crate) fn setting(self) -> String {
        format!("{}ms", self.millis)
    }

    /// `BEGIN` for a transaction of the store's own that takes locks, with both bounds
    /// set for that transaction only; one round trip, as a simple query.
    ///
    /// READ COMMITTED whatever the session's default (`default_transaction_isolation`,
    /// which a database or role may set): each statement must see what committed while
    /// the transaction waited for its lock. Under REPEATABLE READ the snapshot would be
    /// taken by the statement that waits, before the lock is granted: a depth count would
    /// miss the jobs the previous holder added, and a migrator the steps it applied.
    pub(crate) fn begin(self) -> String {
        let bound = self.setting();
        format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{bound}'; \
             SET LOCAL idle_in_transaction_session_timeout = '{bound}'"
        )
    }

    /// `BEGIN` for a transaction of the store's own whose waits keep the server's bound
    /// (an uncapped batch waits for a unique key another transaction is inserting, as a
    /// single insert does), with only the idle bound set: a process paused inside it must
    /// not keep the keys it inserted from every other producer. READ COMMITTED as in
    /// [`LockWait::begin`]: the statements after the insert read what other transactions
    /// committed since it began.
    pub(crate) fn begin_idle_bounded(self) -> String {
        let bound = self.setting();
        format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; \
             SET LOCAL idle_in_transaction_session_timeout = '{bound}'"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_whole_milliseconds_never_zero_never_past_the_longest_timeout() {
        assert_eq!(LockWait::new(Duration::from_secs(5)).setting(), "5000ms");
        assert_eq!(LockWait::new(Duration::ZERO).setting(), "1ms");
        assert_eq!(LockWait::new(Duration::from_micros(1_500)).setting(), "1ms");
        assert_eq!(
            LockWait::new(Duration::MAX),
            LockWait::new(MAX_ACQUIRE_TIMEOUT)
        );
        assert_eq!(
            LockWait::new(Duration::from_secs(2)).begin(),
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '2000ms'; \
             SET LOCAL idle_in_transaction_session_timeout = '2000ms'"
        );
        assert_eq!(
            LockWait::new(Duration::from_secs(2)).begin_idle_bounded(),
            "BEGIN ISOLATION LEVEL READ COMMITTED; \
             SET LOCAL idle_in_transaction_session_timeout = '2000ms'"
        );
    }
}
