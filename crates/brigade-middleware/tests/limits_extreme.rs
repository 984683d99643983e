//! Extreme but valid limits saturate toward the strict side: a vanishing rate admits its
//! burst and then nothing for as long as a process lives, a zero weight still takes a unit.
#![cfg(all(feature = "rate-limit", feature = "weighted"))]

use std::time::{Duration, Instant};

use brigade_middleware::{KeyedRateLimit, Rate, RateLimit, WeightedLimit};

const CENTURY: Duration = Duration::from_secs(86_400 * 365 * 100);

#[test]
fn a_vanishing_rate_has_a_maximal_interval() {
    for rate in [
        Rate::per_second(1e-300),
        Rate::per_second(f64::MIN_POSITIVE),
        Rate::new(1, Duration::MAX),
        Rate::new(1e-10, Duration::MAX),
    ] {
        assert!(
            rate.interval() >= CENTURY,
            "{rate:?}: {:?}",
            rate.interval()
        );
    }
}

#[test]
fn a_vanishing_rate_admits_its_burst_then_nothing() {
    for burst in [1, 2, 3] {
        let limit = RateLimit::builder(Rate::per_second(1e-300))
            .burst(burst)
            .build()
            .expect("a tiny positive rate is valid");
        let now = Instant::now();
        // A burst's tolerance saturates too (toward the strict side): it may let fewer
        // through at once than asked when its span does not fit in the clock, never more.
        let admitted = (0..=burst)
            .take_while(|_| limit.try_acquire(now).is_ok())
            .count();
        assert!(
            (1..=burst as usize).contains(&admitted),
            "burst {burst}: {admitted}"
        );
        let refused = limit.try_acquire(now).expect_err("the burst is spent");
        assert!(
            refused >= now + Duration::from_secs(86_400 * 365),
            "{:?}",
            refused - now
        );
        assert!(
            limit.try_acquire(now + CENTURY).is_err(),
            "still nothing a century on"
        );
    }
}

#[test]
fn a_vanishing_keyed_rate_admits_its_burst_then_nothing() {
    let limit = KeyedRateLimit::builder(Rate::per_second(1e-300), |key: &u8| *key)
        .burst(2)
        .build()
        .expect("a tiny positive rate is valid");
    let now = Instant::now();
    assert!(limit.try_acquire_key(1, now).is_ok());
    assert!(limit.try_acquire_key(1, now).is_ok());
    assert!(limit.try_acquire_key(1, now).is_err());
    assert!(limit.try_acquire_key(1, now + CENTURY).is_err());
}

#[test]
fn a_huge_burst_on_a_slow_rate_still_ends() {
    let limit = RateLimit::builder(Rate::new(1, Duration::MAX))
        .burst(u32::MAX)
        .build()
        .unwrap();
    let now = Instant::now();
    // The burst's tolerance saturates: at most what fits in the clock, never unlimited.
    let admitted = (0..10)
        .take_while(|_| limit.try_acquire(now).is_ok())
        .count();
    assert!(
        (1..10).contains(&admitted),
        "{admitted}: a limit, not a free pass"
    );
    assert!(limit.try_acquire(now + CENTURY).is_err());
}

#[test]
fn a_job_weighing_nothing_still_takes_a_unit() {
    let limit = WeightedLimit::new(2, |weight: &u64| *weight).unwrap();
    assert!(limit.try_acquire(&0));
    assert!(limit.try_acquire(&0));
    assert!(
        !limit.try_acquire(&0),
        "two zero-weight jobs fill two units"
    );
    limit.release_units(&0);
    assert_eq!(limit.in_use(), 1);
}
