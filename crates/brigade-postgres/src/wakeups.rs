//! LISTEN/NOTIFY: enqueues and releases notify the schema's channel with the queue's name;
//! one listening connection per store wakes the workers of that queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

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

    fn wake(&self, queue: &str) {
        let queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(notify) = queues.get(queue) {
            notify.notify_waiters();
        }
    }

    fn wake_all(&self) {
        let queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for notify in queues.values() {
            notify.notify_waiters();
        }
    }
}

/// Listens on `channel` until the store is dropped (`closed` fires), reconnecting after
/// any loss. After each (re)connect every queue is woken, since notifications sent while
/// nobody listened are gone; the workers' polling covers the gap before that.
pub(crate) async fn listen(
    pool: PgPool,
    channel: String,
    wakeups: Weak<Wakeups>,
    mut closed: watch::Receiver<()>,
) {
    let mut retry = Duration::from_millis(100);
    loop {
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            () = listen_once(&pool, &channel, &wakeups) => {}
        }
        if wakeups.strong_count() == 0 {
            return;
        }
        tokio::select! {
            _ = closed.changed() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(pool: &PgPool, channel: &str, wakeups: &Weak<Wakeups>) {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => return tracing::debug!(%error, "LISTEN connection failed; polling meanwhile"),
    };
    if let Err(error) = listener.listen(channel).await {
        return tracing::debug!(%error, "LISTEN failed; polling meanwhile");
    }
    match wakeups.upgrade() {
        Some(wakeups) => wakeups.wake_all(),
        None => return,
    }
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match wakeups.upgrade() {
                Some(wakeups) => wakeups.wake(notification.payload()),
                None => return,
            },
            Ok(None) => return tracing::debug!("LISTEN connection lost; reconnecting"),
            Err(error) => return tracing::debug!(%error, "LISTEN connection failed; reconnecting"),
        }
    }
}
