//! Wake-ups within one process: an enqueue wakes that queue's idle workers when its
//! transaction commits, and a release of units wakes a run waiting for them. SQLite has
//! no notification channel between processes: workers in other processes find the job,
//! or the units, at their next poll.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::SqliteConnection;
use tokio::sync::Notify;

/// The process's wake-ups (by queue and by limit), and the wake-ups that wait for a
/// transaction to commit.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    /// The wake-ups that go out at once.
    now: brigade_queue::Wakeups,
    /// Queues that an open transaction enqueued into, by connection (the address of its
    /// SQLite handle, which the store's pool keeps open for the store's life).
    pending: Mutex<HashMap<usize, Vec<String>>>,
    /// The connections carrying this store's commit and rollback hooks.
    hooked: Mutex<HashSet<usize>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these maps leaves it consistent: every
    // operation on them is a single insert or removal.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Wakeups {
    pub(crate) fn queue(&self, queue: &str) -> Arc<Notify> {
        self.now.queue(queue)
    }

    pub(crate) fn wake_queue(&self, queue: &str) {
        self.now.wake_queue(queue);
    }

    pub(crate) fn units(&self, limit: &str) -> Arc<Notify> {
        self.now.units(limit)
    }

    pub(crate) fn wake_units(&self, limit: &str) {
        self.now.wake_units(limit);
    }

    /// Hooks `conn` so that wake-ups recorded by [`Wakeups::on_commit`] go out when its
    /// transaction commits and are dropped when it rolls back.
    pub(crate) async fn install(
        self: &Arc<Self>,
        conn: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        let mut handle = conn.lock_handle().await?;
        let key = handle.as_raw_handle().as_ptr() as usize;
        let committed = Arc::downgrade(self);
        handle.set_commit_hook(move || {
            if let Some(wakeups) = committed.upgrade() {
                let queues = lock(&wakeups.pending).remove(&key);
                for queue in queues.unwrap_or_default() {
                    wakeups.wake_queue(&queue);
                }
            }
            // `false` would turn the commit into a rollback.
            true
        });
        let rolled_back = Arc::downgrade(self);
        handle.set_rollback_hook(move || {
            if let Some(wakeups) = rolled_back.upgrade() {
                lock(&wakeups.pending).remove(&key);
            }
        });
        // A new connection may sit where a closed one was: nothing of the old one's is due.
        lock(&self.pending).remove(&key);
        lock(&self.hooked).insert(key);
        Ok(())
    }

    /// Wakes `queues` when the transaction open on `conn` commits. A connection that is not
    /// the store's (no hook) wakes them now: a hint ahead of the commit, which the workers'
    /// polling backs up.
    pub(crate) async fn on_commit(
        &self,
        conn: &mut SqliteConnection,
        queues: impl IntoIterator<Item = &str>,
    ) -> Result<(), sqlx::Error> {
        let key = conn.lock_handle().await?.as_raw_handle().as_ptr() as usize;
        if lock(&self.hooked).contains(&key) {
            lock(&self.pending)
                .entry(key)
                .or_default()
                .extend(queues.into_iter().map(str::to_owned));
        } else {
            for queue in queues {
                self.wake_queue(queue);
            }
        }
        Ok(())
    }
}
