//! Reading what the scripts return and what a job hash holds as the queue's types.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brigade_queue::{Claim, DurableId, FencingToken, JobRecord, JobState, Lease, StoreError};
use redis::FromRedisValue;
use serde_json::Value;

/// Microseconds since the epoch, as the scripts store times (negative before 1970).
pub(crate) fn to_micros(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// The time `micros` after the epoch.
pub(crate) fn from_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// A duration in whole microseconds, saturating.
pub(crate) fn duration_micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The payload as enqueued. Text that `serde_json` refuses (written by another client, or
/// nested past its recursion limit) comes back as a JSON string rather than failing the
/// read: such a job is buried at its first claim, and operators must still see it in
/// `dead_jobs`. The SQLite store reads its payloads the same way.
fn payload(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn small<T: TryFrom<i64>>(value: i64, what: &str, id: i64) -> Result<T, StoreError> {
    T::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("job #{id}: {what} out of range: {value}")))
}

/// A row of a claim script's answer that is not a claim: the job's hash holds what no
/// worker can read (a payload `serde_json` refuses, a field another client wrote).
#[derive(Debug)]
pub(crate) struct Unreadable {
    /// The run the script leased, when the row names it.
    pub(crate) lease: Option<Lease>,
    /// What could not be read.
    pub(crate) reason: String,
}

/// A claim from its row in `claim.lua`'s answer:
/// `{id, token, payload, attempt, max_attempts, priority, enqueued_at_us}`, the hash's
/// fields as stored.
pub(crate) fn claim(row: redis::Value, queue: &str) -> Result<Claim, Unreadable> {
    let unnamed = |reason: String| Unreadable {
        lease: None,
        reason,
    };
    let mut fields = Vec::<redis::Value>::from_redis_value(row)
        .map_err(|error| unnamed(format!("a claim is not a list: {error}")))?;
    // Taken rather than cloned: the payload may be large.
    let mut take = |at: usize| {
        fields.get_mut(at).map_or(redis::Value::Nil, |value| {
            std::mem::replace(value, redis::Value::Nil)
        })
    };
    let id: i64 = field(take(0), "id").map_err(unnamed)?;
    let token: i64 = field(take(1), "token").map_err(unnamed)?;
    let lease = Lease::new(DurableId::new(id), FencingToken::new(token));
    let named = |reason: String| Unreadable {
        lease: Some(lease),
        reason,
    };
    let body: String = field(take(2), "payload").map_err(named)?;
    let payload = serde_json::from_str(&body)
        .map_err(|error| named(format!("payload does not parse: {error}")))?;
    let attempt: i64 = field(take(3), "attempt").map_err(named)?;
    let max_attempts: i64 = field(take(4), "max_attempts").map_err(named)?;
    let priority: i64 = field(take(5), "priority").map_err(named)?;
    let enqueued_at: i64 = field(take(6), "enqueued_at").map_err(named)?;
    Ok(Claim {
        id: lease.id,
        token: lease.token,
        queue: queue.to_owned(),
        payload,
        attempt: in_range(attempt, "attempt").map_err(named)?,
        max_attempts: in_range(max_attempts, "max_attempts").map_err(named)?,
        priority: in_range(priority, "priority").map_err(named)?,
        enqueued_at: from_micros(enqueued_at),
    })
}

/// One field of a claim row, or why it cannot be read.
fn field<T: FromRedisValue>(value: redis::Value, what: &str) -> Result<T, String> {
    if value == redis::Value::Nil {
        return Err(format!("{what} is missing"));
    }
    T::from_redis_value(value).map_err(|error| format!("{what} cannot be read: {error}"))
}

fn in_range<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T, String> {
    T::try_from(value).map_err(|_| format!("{what} out of range: {value}"))
}

/// A job record from the fields of its hash.
pub(crate) fn record(id: i64, fields: &HashMap<String, String>) -> Result<JobRecord, StoreError> {
    let text = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| StoreError::Corrupt(format!("job #{id}: no {name} field")))
    };
    let number = |name: &str| -> Result<i64, StoreError> {
        text(name)?
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("job #{id}: {name} is not a number")))
    };
    let optional_time = |name: &str| -> Result<Option<SystemTime>, StoreError> {
        fields.get(name).map_or(Ok(None), |_| {
            number(name).map(|micros| Some(from_micros(micros)))
        })
    };
    let state = text("state")?;
    Ok(JobRecord {
        id: DurableId::new(id),
        queue: text("queue")?.clone(),
        state: JobState::parse(state)
            .ok_or_else(|| StoreError::Corrupt(format!("job #{id}: unknown state {state:?}")))?,
        payload: payload(text("payload")?),
        attempt: small(number("attempt")?, "attempt", id)?,
        max_attempts: small(number("max_attempts")?, "max_attempts", id)?,
        priority: small(number("priority")?, "priority", id)?,
        unique_key: fields.get("unique_key").cloned(),
        run_at: from_micros(number("run_at")?),
        enqueued_at: from_micros(number("enqueued_at")?),
        finished_at: optional_time("finished_at")?,
        last_error: fields.get("last_error").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_both_sides_of_the_epoch() {
        for micros in [0, 1, -1, 1_764_737_244_123_456, -86_400_000_000] {
            assert_eq!(to_micros(from_micros(micros)), micros);
        }
    }

    #[test]
    fn a_bad_hash_is_corrupt_not_a_panic() {
        let mut fields = HashMap::new();
        fields.insert("state".to_owned(), "levitating".to_owned());
        assert!(matches!(record(1, &fields), Err(StoreError::Corrupt(_))));
    }

    fn row(payload: &str, max_attempts: &str) -> redis::Value {
        let text = |text: &str| redis::Value::BulkString(text.as_bytes().to_vec());
        redis::Value::Array(vec![
            redis::Value::Int(7),
            redis::Value::Int(3),
            text(payload),
            redis::Value::Int(1),
            text(max_attempts),
            redis::Value::Int(0),
            text("1764737244123456"),
        ])
    }

    #[test]
    fn a_claim_row_reads_back_or_names_the_run_and_the_field() {
        let claim = claim(row("[1]", "20"), "q").expect("readable");
        assert_eq!((claim.id.get(), claim.token.get()), (7, 3));
        assert_eq!((claim.attempt, claim.max_attempts), (1, 20));
        for (payload, max_attempts, cause) in [
            ("{not json", "20", "payload does not parse"),
            ("[1]", "plenty", "max_attempts cannot be read"),
        ] {
            let unreadable = super::claim(row(payload, max_attempts), "q").expect_err("bad");
            assert_eq!(
                unreadable.lease,
                Some(Lease::new(DurableId::new(7), FencingToken::new(3)))
            );
            assert!(unreadable.reason.starts_with(cause), "{unreadable:?}");
        }
        let short = redis::Value::Array(vec![redis::Value::Int(7)]);
        let unreadable = super::claim(short, "q").expect_err("short");
        assert_eq!(unreadable.lease, None);
        assert_eq!(unreadable.reason, "token is missing");
    }
}
