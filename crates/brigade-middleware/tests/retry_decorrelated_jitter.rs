//! Decorrelated jitter keeps walking however many times a job has failed: successive
//! delays keep varying, each within `[base, cap]`.
#![cfg(feature = "retry")]

use std::time::Duration;

use brigade_middleware::{Backoff, Jitter};

fn backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(1))
        .cap(Duration::from_secs(3600))
        .jitter(Jitter::Decorrelated)
}

#[test]
fn decorrelated_delays_keep_varying_past_sixty_four_attempts() {
    let backoff = backoff();
    assert_ne!(backoff.delay(64, 12345), backoff.delay(65, 12345));
    let delays: Vec<_> = (60..=70)
        .map(|attempt| backoff.delay(attempt, 12345))
        .collect();
    let mut distinct = delays.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() > 2,
        "later delays stopped moving: {delays:?}"
    );
}

#[test]
fn decorrelated_delays_stay_within_base_and_cap_at_any_attempt() {
    let backoff = backoff();
    let attempts = (1..=1100).chain([10_000, 1_000_000, u32::MAX - 1, u32::MAX]);
    for seed in [0, 1, 12345, u64::MAX] {
        for attempt in attempts.clone() {
            let delay = backoff.delay(attempt, seed);
            assert!(
                delay >= Duration::from_millis(1) && delay <= Duration::from_secs(3600),
                "attempt {attempt}, seed {seed}: {delay:?}"
            );
        }
    }
}

#[test]
fn far_apart_decorrelated_delays_still_vary() {
    let backoff = backoff();
    for start in [100, 5_000, 1_000_000, u32::MAX - 20] {
        let delays: Vec<_> = (start..start + 20)
            .map(|attempt| backoff.delay(attempt, 12345))
            .collect();
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 2, "from attempt {start}: {delays:?}");
    }
}
