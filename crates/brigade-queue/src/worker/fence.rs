use std::sync::atomic::{AtomicU8, Ordering};

use brigade_core::CancellationToken;

/// Why a run was told to stop, so that its end is recorded the right way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Still running as far as the worker knows.
    None,
    /// The worker is shutting down, and the run had not started or outlasted the grace
    /// period: the job goes back uncharged.
    Shutdown,
    /// The lease is gone or about to go (revoked, or not renewed in time): another claim
    /// owns the job's future, and nothing is recorded.
    LeaseLost,
}

/// The stop signal of one claimed job: a token the run watches, the first reason given,
/// whether the run started (a claimed job waits at the global limits first) and whether it
/// ended (its end may still be on its way to the store).
#[derive(Debug)]
pub(crate) struct Fence {
    token: CancellationToken,
    /// The reason's code in the low bits, [`STARTED`] and [`ENDED`].
    state: AtomicU8,
}

const REASON: u8 = 0b11;
const STARTED: u8 = 0b100;
const ENDED: u8 = 0b1000;

impl Fence {
    pub(crate) fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            state: AtomicU8::new(0),
        }
    }

    /// Stops the run, for `reason` unless another was given first.
    pub(crate) fn stop(&self, reason: StopReason) {
        let Some(code) = code(reason) else {
            return;
        };
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & REASON == 0).then_some(state | code)
            });
        self.token.cancel();
    }

    /// Stops the run if it has not started; whether it did. A run racing this call
    /// either started first (and is left alone) or finds itself stopped in
    /// [`start`](Self::start).
    pub(crate) fn stop_unstarted(&self, reason: StopReason) -> bool {
        let Some(code) = code(reason) else {
            return false;
        };
        let stopped = self
            .state
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if stopped {
            self.token.cancel();
        }
        stopped
    }

    /// Marks the run started; false if it was stopped first and must not start.
    pub(crate) fn start(&self) -> bool {
        self.state
            .compare_exchange(0, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Marks the run ended: its handler returned, or it never started.
    pub(crate) fn end(&self) {
        self.state.fetch_or(ENDED, Ordering::AcqRel);
    }

    /// Whether the run started and has not ended.
    pub(crate) fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) & (STARTED | ENDED) == STARTED
    }

    pub(crate) fn reason(&self) -> StopReason {
        match self.state.load(Ordering::Acquire) & REASON {
            1 => StopReason::Shutdown,
            2 => StopReason::LeaseLost,
            _ => StopReason::None,
        }
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

fn code(reason: StopReason) -> Option<u8> {
    match reason {
        StopReason::None => None,
        StopReason::Shutdown => Some(1),
        StopReason::LeaseLost => Some(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_run_is_not_stopped_as_unstarted() {
        let fence = Fence::new();
        assert!(fence.start());
        assert!(!fence.stop_unstarted(StopReason::Shutdown));
        assert_eq!(fence.reason(), StopReason::None);
        fence.stop(StopReason::LeaseLost);
        assert_eq!(fence.reason(), StopReason::LeaseLost);
        assert!(fence.token().is_cancelled());
    }

    #[test]
    fn a_run_is_running_from_its_start_to_its_end() {
        let fence = Fence::new();
        assert!(!fence.is_running());
        assert!(fence.start());
        fence.stop(StopReason::Shutdown);
        assert!(
            fence.is_running(),
            "stopped, but its handler has not returned"
        );
        fence.end();
        assert!(!fence.is_running());
        assert_eq!(fence.reason(), StopReason::Shutdown);
    }

    #[test]
    fn a_run_stopped_before_its_start_does_not_start() {
        let fence = Fence::new();
        assert!(fence.stop_unstarted(StopReason::Shutdown));
        assert!(!fence.start());
        fence.stop(StopReason::LeaseLost);
        assert_eq!(
            fence.reason(),
            StopReason::Shutdown,
            "the first reason stands"
        );
    }
}
