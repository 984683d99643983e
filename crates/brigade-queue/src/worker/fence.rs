use std::sync::atomic::{AtomicU8, Ordering};

use brigade_core::CancellationToken;

/// Why a run was told to stop, so that its end is recorded the right way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Still running as far as the worker knows.
    None,
    /// The worker is shutting down past its grace period: the job goes back uncharged.
    Shutdown,
    /// The lease is gone or about to go (revoked, or not renewed in time): another claim
    /// owns the job's future, and nothing is recorded.
    LeaseLost,
}

/// The stop signal of one claimed job: a token the run watches, and the first reason given.
#[derive(Debug)]
pub(crate) struct Fence {
    token: CancellationToken,
    reason: AtomicU8,
}

impl Fence {
    pub(crate) fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            reason: AtomicU8::new(0),
        }
    }

    /// Stops the run for `reason`; the first reason wins.
    pub(crate) fn stop(&self, reason: StopReason) {
        let code = match reason {
            StopReason::None => return,
            StopReason::Shutdown => 1,
            StopReason::LeaseLost => 2,
        };
        let _ = self
            .reason
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.token.cancel();
    }

    pub(crate) fn reason(&self) -> StopReason {
        match self.reason.load(Ordering::Acquire) {
            1 => StopReason::Shutdown,
            2 => StopReason::LeaseLost,
            _ => StopReason::None,
        }
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}
