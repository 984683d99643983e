//! Per-queue wake-ups: fired in-process by this store's enqueues, releases, rescues and
//! replays; workers of other processes find new jobs by polling (a Redis stream has no
//! notification a multiplexed connection could wait on without blocking its other calls).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The wake-up of every queue a worker of this process waits on.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakeups {
    pub(crate) fn of(&self, queue: &str) -> Arc<Notify> {
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(queues.entry(queue.to_owned()).or_default())
    }

    pub(crate) fn wake(&self, queue: &str) {
        let queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(notify) = queues.get(queue) {
            notify.notify_waiters();
        }
    }
}
