//! The submit side's books: the gate a shutdown closes, the ids handed out, and the
//! submits that handed their job back after getting one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use brigade_core::JobId;
use crossbeam_utils::CachePadded;

use crate::submit_gate::{Pass, SubmitGate};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Intake {
    gate: SubmitGate,
    /// Submits that got an id (the next id is this plus one).
    entered: CachePadded<AtomicU64>,
    /// Submits that got an id and then handed their job back (full, timed out).
    refused: AtomicU64,
}

impl Intake {
    pub(crate) fn new() -> Self {
        Intake {
            gate: SubmitGate::new(),
            entered: CachePadded::new(AtomicU64::new(0)),
            refused: AtomicU64::new(0),
        }
    }

    /// Enters the gate, or `None` once a shutdown closed it.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        self.gate.enter()
    }

    /// Counts a submit and gives its job an id.
    pub(crate) fn next_id(&self) -> JobId {
        JobId::new(self.entered.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// A submit that got an id handed its job back: it never counted as submitted.
    pub(crate) fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Release);
    }

    /// Jobs accepted so far.
    pub(crate) fn submitted(&self) -> u64 {
        // Read `refused` first: every refusal follows its entry, so the later read of
        // `entered` covers it and the difference cannot underflow.
        let refused = self.refused.load(Ordering::Acquire);
        self.entered.load(Ordering::Acquire).saturating_sub(refused)
    }

    /// Closes the gate: no job is accepted after the submitters inside have left.
    pub(crate) fn close(&self) {
        self.gate.close();
    }

    /// Waits for the submitters inside the gate, until `deadline` if any; returns whether
    /// none is left.
    pub(crate) fn wait_empty_until(&self, deadline: Option<Instant>) -> bool {
        self.gate.wait_empty_until(deadline)
    }
}
