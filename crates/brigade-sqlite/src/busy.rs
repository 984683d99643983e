//! Retrying what SQLite refuses as busy without waiting its busy timeout.
//!
//! SQLite waits the busy timeout for a lock only where waiting cannot deadlock. Switching a
//! new file to WAL mode holds a shared lock while it asks for the exclusive one, so when
//! two connections (processes, or stores of one process) open a fresh file at once, one of
//! them fails with `SQLITE_BUSY` at once. Opening and migrating are retried here instead,
//! with a short backoff, until the busy timeout has passed.

use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::Duration;

use brigade_queue::StoreError;
use tokio::time::Instant;

/// SQLite's primary result code for a lock held by another connection.
const SQLITE_BUSY: i64 = 5;

/// The first pause after a busy answer; each one after doubles, up to [`LONGEST_PAUSE`].
/// A WAL switch and the migrations take milliseconds, so the first retries come soon.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// Runs `attempt` until it answers anything but busy, or until `deadline`, after which its
/// busy answer is returned. Each pause is drawn at random between half and all of its
/// step, so that connections refused together do not come back together.
pub(crate) async fn retry_while_busy<T, F, Fut>(
    deadline: Instant,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut step = FIRST_PAUSE;
    loop {
        let error = match attempt().await {
            Err(error) if is_busy(&error) => error,
            answer => return answer,
        };
        let pause = jittered(step);
        if Instant::now() + pause > deadline {
            return Err(error);
        }
        tokio::time::sleep(pause).await;
        step = (step * 2).min(LONGEST_PAUSE);
    }
}

/// Whether SQLite refused the call because another connection held a lock (any of
/// `SQLITE_BUSY`'s extended codes).
fn is_busy(error: &StoreError) -> bool {
    let StoreError::Unavailable(source) = error else {
        return false;
    };
    let Some(sqlx::Error::Database(database)) = source.downcast_ref::<sqlx::Error>() else {
        return false;
    };
    database
        .code()
        .and_then(|code| code.parse::<i64>().ok())
        // Extended result codes keep the primary code in their low byte.
        .is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// Between half and all of `step`: std's hasher keys are random per `RandomState`, which
/// is randomness enough for a pause, without a dependency.
fn jittered(step: Duration) -> Duration {
    let random = RandomState::new().build_hasher().finish();
    let half = step / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(random % nanos.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_stay_within_half_and_all_of_their_step() {
        for _ in 0..1_000 {
            let pause = jittered(LONGEST_PAUSE);
            assert!(
                pause >= LONGEST_PAUSE / 2 && pause <= LONGEST_PAUSE,
                "{pause:?}"
            );
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn only_a_busy_database_is_retried() {
        assert!(!is_busy(&StoreError::Unavailable("timed out".into())));
        assert!(!is_busy(&StoreError::invalid("bad")));
        assert!(!is_busy(&StoreError::Unavailable(Box::new(
            sqlx::Error::PoolTimedOut
        ))));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn other_answers_are_returned_at_once() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempts = 0;
        let answer: Result<(), StoreError> = retry_while_busy(deadline, || {
            attempts += 1;
            async { Err(StoreError::Unavailable("not busy".into())) }
        })
        .await;
        assert!(answer.is_err());
        assert_eq!(attempts, 1, "only busy answers are retried");
    }
}
