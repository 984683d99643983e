//! Reading what the scripts return and what a job hash holds as the queue's types.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brigade_queue::{Claim, DurableId, FencingToken, JobRecord, JobState, StoreError};
use serde_json::Value;

/// A claim as `claim.lua` returns it:
/// `{id, token, payload, attempt, max_attempts, priority, enqueued_at_us}`.
pub(crate) type ClaimRow = (i64, i64, String, i64, i64, i64, i64);

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

fn payload(text: &str, id: i64) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Corrupt(format!("job #{id}: payload is not JSON: {error}")))
}

fn small<T: TryFrom<i64>>(value: i64, what: &str, id: i64) -> Result<T, StoreError> {
    T::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("job #{id}: {what} out of range: {value}")))
}

/// A claim from its row in `claim.lua`'s answer.
pub(crate) fn claim(row: ClaimRow, queue: &str) -> Result<Claim, StoreError> {
    let (id, token, body, attempt, max_attempts, priority, enqueued_at) = row;
    Ok(Claim {
        id: DurableId::new(id),
        token: FencingToken::new(token),
        queue: queue.to_owned(),
        payload: payload(&body, id)?,
        attempt: small(attempt, "attempt", id)?,
        max_attempts: small(max_attempts, "max_attempts", id)?,
        priority: small(priority, "priority", id)?,
        enqueued_at: from_micros(enqueued_at),
    })
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
        payload: payload(text("payload")?, id)?,
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
        let row = (1, 1, "{not json".to_owned(), 1, 1, 0, 0);
        assert!(matches!(claim(row, "q"), Err(StoreError::Corrupt(_))));
    }
}
