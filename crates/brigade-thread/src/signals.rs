//! The pool's own messages to its workers: wake-ups (after a resize shrank the range) and
//! stops (at shutdown, one per worker). They travel on a channel of their own, never
//! through the bounded ready queue: there they would take slots meant for jobs, count in
//! `Stats::queued` (and so lower `busy`), and make admission see a fuller queue.

use crossbeam_channel::{Receiver, Sender};

/// One message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Wake,
    Stop,
}

/// See the module docs. Unbounded: at most a few per worker and per resize.
#[derive(Debug)]
pub(crate) struct Signals {
    tx: Sender<Signal>,
    rx: Receiver<Signal>,
}

impl Signals {
    pub(crate) fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Signals { tx, rx }
    }

    /// Wakes one idle worker (if any waits; otherwise the next one to wait sees it).
    pub(crate) fn wake_one(&self) {
        // The pool holds the receiver, so this cannot fail.
        let _ = self.tx.send(Signal::Wake);
    }

    /// Tells `workers` workers to stop.
    pub(crate) fn stop(&self, workers: usize) {
        for _ in 0..workers {
            let _ = self.tx.send(Signal::Stop);
        }
    }

    /// The receiving end, for a worker to block on with its other channels.
    pub(crate) fn receiver(&self) -> &Receiver<Signal> {
        &self.rx
    }
}
