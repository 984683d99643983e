//! Forgetting idle keys never lets a key start sooner than its rate allows, whatever `now`
//! the sweep and the later callers present: a sweep whose `now` is later than a caller's
//! (`evict_idle` with a later time, or a worker whose clock read came after another's)
//! must not turn a refusal into a start.
#![cfg(feature = "rate-limit")]

use std::time::{Duration, Instant};

use brigade_middleware::{KeyedRateLimit, Rate};

fn limit() -> KeyedRateLimit<u32, u32> {
    KeyedRateLimit::builder(Rate::per_second(1), |key: &u32| *key)
        .build()
        .unwrap()
}

#[test]
fn a_sweep_with_a_later_now_does_not_grant_an_extra_start() {
    let limit = limit();
    let t = Instant::now();
    assert!(limit.try_acquire(&1, t).is_ok());
    let _ = limit.evict_idle(t + Duration::from_millis(1500));
    assert_eq!(
        limit.try_acquire(&1, t + Duration::from_millis(100)),
        Err(t + Duration::from_secs(1)),
        "a second start 100 ms after the first at 1/s"
    );
    assert!(limit.try_acquire(&1, t + Duration::from_secs(1)).is_ok());
}

#[test]
fn an_automatic_sweep_by_a_later_caller_does_not_grant_an_extra_start() {
    let limit = limit();
    let t = Instant::now();
    assert!(limit.try_acquire(&0, t).is_ok());
    // Many other keys, their starts read from a later clock, grow the shards until they
    // sweep themselves at that later time.
    let later = t + Duration::from_secs(5);
    for key in 1..5_000 {
        assert!(limit.try_acquire(&key, later).is_ok());
    }
    assert_eq!(
        limit.tracked_keys(),
        4_999,
        "the sweep forgot the first key"
    );
    assert!(
        limit
            .try_acquire(&0, t + Duration::from_millis(100))
            .is_err(),
        "a caller whose clock read predates the sweep got a second start"
    );
}
