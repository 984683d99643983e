//! Time arithmetic that cannot panic: `Instant + Duration` saturating toward the far future.

use std::time::{Duration, Instant};

/// How far ahead a saturated time lies: about thirty years, as tokio's own "far future".
/// Further than any pool lives, and representable by `Instant` on every platform.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `at + delay`, or a time about thirty years ahead of `at` when the sum does not fit in
/// an [`Instant`] (or lies further than that). A delay that large means "not in this
/// process's life": saturating keeps that meaning where `+` would panic ("overflow when
/// adding duration to instant"). Every backend and middleware computes times this way.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::instant_after;
///
/// let now = Instant::now();
/// assert_eq!(instant_after(now, Duration::from_secs(1)), now + Duration::from_secs(1));
/// let never = instant_after(now, Duration::MAX);
/// assert!(never > now + Duration::from_secs(86_400 * 365 * 10));
/// ```
#[must_use]
pub fn instant_after(at: Instant, delay: Duration) -> Instant {
    if delay <= FAR_FUTURE {
        if let Some(later) = at.checked_add(delay) {
            return later;
        }
    }
    // Halve until it fits: never earlier than a representable delay would give.
    let mut step = FAR_FUTURE.min(delay);
    loop {
        if let Some(later) = at.checked_add(step) {
            return later;
        }
        step /= 2;
        if step.is_zero() {
            return at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_delays_add_and_huge_ones_saturate_far_ahead() {
        let now = Instant::now();
        assert_eq!(instant_after(now, Duration::ZERO), now);
        assert_eq!(
            instant_after(now, Duration::from_millis(5)),
            now + Duration::from_millis(5)
        );
        for huge in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 2),
            FAR_FUTURE * 2,
        ] {
            assert_eq!(instant_after(now, huge), now + FAR_FUTURE, "{huge:?}");
        }
        assert_eq!(instant_after(now, FAR_FUTURE), now + FAR_FUTURE);
    }
}
