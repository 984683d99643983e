//! The global rate limit's arithmetic (GCRA), kept apart from SQL so it can be read and
//! tested on its own. The store reads `now` from SQLite's clock and writes the new state
//! back in the same write transaction.

use std::time::Duration;

use brigade_queue::RateGrant;

/// Grants up to `want` starts of a limit of one start per `interval_us` with bursts of
/// `burst`, given the theoretical arrival time `tat` (`None`: never used). Returns the
/// grant and the new arrival time to store (`None`: nothing changes).
///
/// Start i (from 1) fits while `base + (i - 1) * interval <= now + (burst - 1) * interval`,
/// with `base = max(tat, now)`: the semantics of the PostgreSQL store's `take_rate`.
pub(crate) fn gcra(
    now: i64,
    tat: Option<i64>,
    interval_us: i64,
    burst: u32,
    want: u32,
) -> (RateGrant, Option<i64>) {
    let interval = i128::from(interval_us.max(1));
    let now = i128::from(now);
    let base = tat.map_or(now, |tat| i128::from(tat).max(now));
    let slack = now + (i128::from(burst) - 1) * interval - base;
    if slack < 0 {
        let wait = u64::try_from(-slack).unwrap_or(u64::MAX);
        let grant = RateGrant {
            granted: 0,
            retry_after: Duration::from_micros(wait),
        };
        return (grant, None);
    }
    if want == 0 {
        let grant = RateGrant {
            granted: 0,
            retry_after: Duration::ZERO,
        };
        return (grant, None);
    }
    let fits = slack / interval + 1;
    let granted = i128::from(want).min(fits);
    let new_tat = i64::try_from(base + granted * interval).unwrap_or(i64::MAX);
    let grant = RateGrant {
        granted: u32::try_from(granted).unwrap_or(u32::MAX),
        retry_after: Duration::ZERO,
    };
    (grant, Some(new_tat))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000;

    #[test]
    fn a_fresh_limit_grants_its_burst_then_waits_one_interval() {
        let (grant, tat) = gcra(0, None, 100 * MS, 3, 10);
        assert_eq!(grant.granted, 3);
        assert_eq!(tat, Some(300 * MS));
        let (empty, unchanged) = gcra(0, tat, 100 * MS, 3, 1);
        assert_eq!(empty.granted, 0);
        assert_eq!(empty.retry_after, Duration::from_millis(100));
        assert_eq!(unchanged, None);
        let (one, _) = gcra(100 * MS, tat, 100 * MS, 3, 10);
        assert_eq!(one.granted, 1);
    }

    #[test]
    fn an_idle_limit_refills_to_its_burst_only() {
        let (grant, _) = gcra(10_000 * MS, Some(0), 100 * MS, 3, 10);
        assert_eq!(grant.granted, 3);
    }

    #[test]
    fn asking_for_nothing_changes_nothing() {
        let (grant, tat) = gcra(0, None, 100 * MS, 3, 0);
        assert_eq!((grant.granted, tat), (0, None));
    }

    #[test]
    fn extreme_settings_do_not_overflow() {
        let (grant, _) = gcra(i64::MAX, Some(i64::MAX), i64::MAX, u32::MAX, u32::MAX);
        assert!(grant.granted >= 1);
        let (grant, _) = gcra(0, Some(i64::MAX), 1, 1, 1);
        assert_eq!(grant.granted, 0);
    }
}
