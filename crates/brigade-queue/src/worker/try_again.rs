//! The wait between tries of a store call that failed in a way that may pass (the link
//! down, the store restarting), for calls that matter only until a time: a run's end
//! while its lease lasts, a give-back while the claim's lease lasts.

use std::time::{Duration, Instant};

use brigade_core::instant_after;

/// The first wait: short enough that a blip costs little, long enough not to hammer a
/// store that is restarting.
const FIRST_WAIT: Duration = Duration::from_millis(50);
/// Waits double up to this.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// See the module docs.
#[derive(Debug)]
pub(super) struct TryAgain {
    wait: Duration,
}

impl TryAgain {
    pub(super) fn new() -> Self {
        TryAgain { wait: FIRST_WAIT }
    }

    /// Whether a try after the next wait still comes before `until`.
    pub(super) fn lands_before(&self, until: Instant) -> bool {
        instant_after(Instant::now(), self.wait) < until
    }

    /// Waits before the next try; the wait after it is twice as long, up to a second.
    pub(super) async fn wait(&mut self) {
        tokio::time::sleep(self.take_wait()).await;
    }

    fn take_wait(&mut self) -> Duration {
        let wait = self.wait;
        self.wait = (wait * 2).min(MAX_WAIT);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_second_and_stop_short_of_the_deadline() {
        let mut again = TryAgain::new();
        let waits: Vec<u128> = (0..7).map(|_| again.take_wait().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1000, 1000]);
        assert!(again.lands_before(Instant::now() + Duration::from_secs(2)));
        assert!(!again.lands_before(Instant::now() + Duration::from_millis(500)));
    }
}
