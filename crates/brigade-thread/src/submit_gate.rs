//! The submit gate: the protocol that keeps a submit racing a shutdown from losing its job.
//!
//! One atomic word holds a `CLOSED` bit and the number of submitters inside the gate. A
//! submitter enters (adds one), and only if `CLOSED` was clear at that moment may it queue
//! its job; it leaves (subtracts one) when the job is queued or refused. Shutdown sets
//! `CLOSED` and then waits until no submitter is inside. After that wait nobody can queue
//! a job any more, so what shutdown finds in the queue is everything there will ever be:
//! each submit either handed its job back (`Closed`) or queued it before shutdown drained.

use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex, lock};

const CLOSED: usize = 1 << (usize::BITS - 1);

/// See the module docs.
#[derive(Debug)]
pub(crate) struct SubmitGate {
    // Alone on its cache line: every submit writes it twice, and no worker should pay.
    state: CachePadded<AtomicUsize>,
    // Only shutdown waits here, and only the last submitter out after a close notifies.
    lock: Mutex<()>,
    emptied: Condvar,
}

/// A submitter's presence inside the gate; leaving is dropping it.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    gate: &'a SubmitGate,
}

impl SubmitGate {
    pub(crate) fn new() -> Self {
        SubmitGate {
            state: CachePadded::new(AtomicUsize::new(0)),
            lock: Mutex::new(()),
            emptied: Condvar::new(),
        }
    }

    /// Enters the gate, or `None` once the gate is closed.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        // SeqCst pairs with `close`: either this add is ordered before the CLOSED bit (and
        // shutdown waits for us), or we see the bit and turn back.
        let previous = self.state.fetch_add(1, Ordering::SeqCst);
        let pass = Pass { gate: self };
        if previous & CLOSED != 0 {
            drop(pass);
            return None;
        }
        Some(pass)
    }

    /// Closes the gate; returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        self.state.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0
    }

    /// Blocks until no submitter is inside. Call after [`close`](Self::close).
    #[cfg(test)]
    pub(crate) fn wait_empty(&self) {
        self.wait_empty_until(None);
    }

    /// As [`wait_empty`](Self::wait_empty), giving up at `deadline`; returns whether empty.
    pub(crate) fn wait_empty_until(&self, deadline: Option<Instant>) -> bool {
        let mut guard = lock(&self.lock);
        while self.state.load(Ordering::SeqCst) & !CLOSED != 0 {
            guard = match deadline {
                None => self
                    .emptied
                    .wait(guard)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.emptied
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
        true
    }

    fn leave(&self) {
        let previous = self.state.fetch_sub(1, Ordering::SeqCst);
        if previous == CLOSED | 1 {
            // The last one out after a close: taking the lock orders this notify after the
            // waiter's check, so the wake-up cannot be lost.
            drop(lock(&self.lock));
            self.emptied.notify_all();
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.gate.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_turns_submitters_back() {
        let gate = SubmitGate::new();
        let pass = gate.enter();
        assert!(pass.is_some());
        drop(pass);
        assert!(gate.close());
        assert!(!gate.close());
        assert!(gate.enter().is_none());
        gate.wait_empty();
    }
}

/// Model: a submitter racing a shutdown never loses its job.
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use std::collections::VecDeque;

    use super::*;
    use loom::sync::Arc;

    #[test]
    fn loom_submit_racing_shutdown_loses_no_job() {
        loom::model(|| {
            let gate = Arc::new(SubmitGate::new());
            let queue = Arc::new(Mutex::new(VecDeque::new()));
            let submitter = {
                let (gate, queue) = (gate.clone(), queue.clone());
                loom::thread::spawn(move || match gate.enter() {
                    Some(_pass) => {
                        lock(&queue).push_back(7u32);
                        true
                    }
                    None => false,
                })
            };
            gate.close();
            gate.wait_empty();
            // Shutdown drains what is queued now; nothing may arrive after this point.
            let drained: Vec<u32> = lock(&queue).drain(..).collect();
            let accepted = submitter.join().unwrap();
            assert_eq!(
                accepted,
                drained == [7],
                "accepted jobs are drained, refused ones are not"
            );
            assert!(lock(&queue).is_empty(), "a job arrived after the drain");
        });
    }
}
