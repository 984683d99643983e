//! Rows read back from the jobs table, and the conversions of times and durations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brigade_queue::{Claim, DurableId, FencingToken, JobRecord, JobState, StoreError};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::store_error;

/// Timestamps are stored as microseconds since the epoch, so the crate needs no date
/// library and SQL compares them as integers.
pub(crate) fn from_micros(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros.max(0).unsigned_abs())
}

pub(crate) fn to_micros(time: SystemTime) -> i64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

pub(crate) fn duration_micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A delay from now as added to the store's clock: rounded up by one tick of that clock
/// (a millisecond), since `now` is the current millisecond truncated; a job told to wait
/// is then never claimable early. A zero delay stays zero.
pub(crate) fn delay_micros(delay: Duration) -> i64 {
    if delay.is_zero() {
        0
    } else {
        duration_micros(delay).saturating_add(1_000)
    }
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn priority(value: i64) -> i16 {
    i16::try_from(value).unwrap_or(if value < 0 { i16::MIN } else { i16::MAX })
}

/// The payload as enqueued. Text that is not JSON (the column was edited by hand) comes
/// back as a JSON string rather than failing the read: one bad row must not fail every
/// claim of its queue; the worker then buries it when it does not decode as the handler's
/// type, and operators see the text in `dead_jobs`.
fn payload(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// The columns [`claim`] reads.
pub(crate) const CLAIM_COLUMNS: &str = "jobs.id, jobs.queue, jobs.payload, jobs.attempt, jobs.max_attempts, jobs.priority, jobs.lease_token, jobs.enqueued_at";

pub(crate) fn claim(row: &SqliteRow) -> Result<Claim, StoreError> {
    let text: String = row.try_get("payload").map_err(store_error)?;
    let read = || -> Result<Claim, sqlx::Error> {
        Ok(Claim {
            id: DurableId::new(row.try_get("id")?),
            token: FencingToken::new(row.try_get("lease_token")?),
            queue: row.try_get("queue")?,
            payload: Value::Null,
            attempt: count(row.try_get("attempt")?),
            max_attempts: count(row.try_get("max_attempts")?),
            priority: priority(row.try_get("priority")?),
            enqueued_at: from_micros(row.try_get("enqueued_at")?),
        })
    };
    let mut claim = read().map_err(store_error)?;
    claim.payload = payload(text);
    Ok(claim)
}

/// The columns [`record`] reads.
pub(crate) const RECORD_COLUMNS: &str = "id, queue, state, payload, attempt, max_attempts, priority, unique_key, last_error, \
     run_at, enqueued_at, finished_at";

pub(crate) fn record(row: &SqliteRow) -> Result<JobRecord, StoreError> {
    let text: String = row.try_get("payload").map_err(store_error)?;
    let state: String = row.try_get("state").map_err(store_error)?;
    let state = JobState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown state {state:?}")))?;
    let read = || -> Result<JobRecord, sqlx::Error> {
        Ok(JobRecord {
            id: DurableId::new(row.try_get("id")?),
            queue: row.try_get("queue")?,
            state,
            payload: Value::Null,
            attempt: count(row.try_get("attempt")?),
            max_attempts: count(row.try_get("max_attempts")?),
            priority: priority(row.try_get("priority")?),
            unique_key: row.try_get("unique_key")?,
            run_at: from_micros(row.try_get("run_at")?),
            enqueued_at: from_micros(row.try_get("enqueued_at")?),
            finished_at: row
                .try_get::<Option<i64>, _>("finished_at")?
                .map(from_micros),
            last_error: row.try_get("last_error")?,
        })
    };
    let mut record = read().map_err(store_error)?;
    record.payload = payload(text);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_and_saturate() {
        let now = SystemTime::now();
        let back = from_micros(to_micros(now));
        assert!(now.duration_since(back).unwrap_or_default() < Duration::from_micros(1));
        assert_eq!(from_micros(-5), UNIX_EPOCH);
        assert_eq!(duration_micros(Duration::MAX), i64::MAX);
    }

    #[test]
    fn delays_round_up_by_one_clock_tick() {
        assert_eq!(delay_micros(Duration::ZERO), 0);
        assert_eq!(delay_micros(Duration::from_millis(5)), 6_000);
        assert_eq!(delay_micros(Duration::MAX), i64::MAX);
    }

    #[test]
    fn a_payload_that_is_not_json_comes_back_as_text() {
        assert_eq!(
            payload(r#"{"n":1}"#.to_owned()),
            serde_json::json!({"n": 1})
        );
        assert_eq!(
            payload("not json".to_owned()),
            Value::String("not json".into())
        );
    }

    #[test]
    fn priorities_saturate() {
        assert_eq!(priority(40_000), i16::MAX);
        assert_eq!(priority(-40_000), i16::MIN);
        assert_eq!(priority(-3), -3);
    }
}
