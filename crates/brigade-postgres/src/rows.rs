//! Rows read back from the jobs table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brigade_queue::{Claim, DurableId, FencingToken, JobRecord, JobState, StoreError};
use sqlx::Row;
use sqlx::postgres::PgRow;

/// Timestamps travel as microseconds since the epoch, so the crate needs no date library.
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

/// `text` as a `text` column holds it: PostgreSQL text has no NUL byte, so each becomes
/// U+FFFD. A handler's error is then recorded whatever it holds, not refused on every
/// attempt while the job runs again.
pub(crate) fn storable_text(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// What a queue or limit name must be here: it travels as a `NOTIFY` payload, which
/// PostgreSQL refuses from 8,000 bytes, and in `text` columns, which hold no NUL.
pub(crate) const NAME_RULE: &str = "under 8,000 bytes, without NUL (it is a NOTIFY payload)";

/// Whether `name` follows [`NAME_RULE`]: whether PostgreSQL takes it on every call.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() < 8_000 && !name.contains('\0')
}

fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

/// The columns [`claim`] reads.
pub(crate) const CLAIM_COLUMNS: &str = "j.id, j.queue, j.payload, j.attempt, j.max_attempts, j.priority, j.lease_token, \
     (extract(epoch FROM j.enqueued_at) * 1000000)::int8 AS enqueued_us";

pub(crate) fn claim(row: &PgRow) -> Result<Claim, sqlx::Error> {
    Ok(Claim {
        id: DurableId::new(row.try_get("id")?),
        token: FencingToken::new(row.try_get("lease_token")?),
        queue: row.try_get("queue")?,
        payload: row.try_get("payload")?,
        attempt: count(row.try_get("attempt")?),
        max_attempts: count(row.try_get("max_attempts")?),
        priority: row.try_get("priority")?,
        enqueued_at: from_micros(row.try_get("enqueued_us")?),
    })
}

/// The columns [`record`] reads.
pub(crate) const RECORD_COLUMNS: &str = "id, queue, state, payload, attempt, max_attempts, priority, unique_key, last_error, \
     (extract(epoch FROM run_at) * 1000000)::int8 AS run_at_us, \
     (extract(epoch FROM enqueued_at) * 1000000)::int8 AS enqueued_us, \
     (extract(epoch FROM finished_at) * 1000000)::int8 AS finished_us";

pub(crate) fn record(row: &PgRow) -> Result<JobRecord, StoreError> {
    let read = || -> Result<JobRecord, sqlx::Error> {
        let state: String = row.try_get("state")?;
        let state = JobState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown state {state:?}").into()))?;
        Ok(JobRecord {
            id: DurableId::new(row.try_get("id")?),
            queue: row.try_get("queue")?,
            state,
            payload: row.try_get("payload")?,
            attempt: count(row.try_get("attempt")?),
            max_attempts: count(row.try_get("max_attempts")?),
            priority: row.try_get("priority")?,
            unique_key: row.try_get("unique_key")?,
            run_at: from_micros(row.try_get("run_at_us")?),
            enqueued_at: from_micros(row.try_get("enqueued_us")?),
            finished_at: row
                .try_get::<Option<i64>, _>("finished_us")?
                .map(from_micros),
            last_error: row.try_get("last_error")?,
        })
    };
    read().map_err(crate::error::store_error)
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
}
