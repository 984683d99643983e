//! Per-queue wake-ups. The scripts that make a job claimable (enqueue, release, rescue,
//! replay) `PUBLISH` the queue's name on the store's channel, `<prefix>:wakeups`; one
//! subscribed connection per store (pub/sub needs a connection of its own) wakes the
//! workers of that queue in this process. This process's own enqueues and releases also
//! wake its workers directly, without the round trip. A wake-up is a hint: messages sent
//! while the subscriber reconnects are lost, so every (re)subscription wakes every queue,
//! and workers poll behind it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

/// The wake-up of every queue a worker of this process waits on.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakeups {
    pub(crate) fn of(&self, queue: &str) -> Arc<Notify> {
        let mut queues = self.lock();
        Arc::clone(queues.entry(queue.to_owned()).or_default())
    }

    pub(crate) fn wake(&self, queue: &str) {
        if let Some(notify) = self.lock().get(queue) {
            notify.notify_waiters();
        }
    }

    fn wake_all(&self) {
        for notify in self.lock().values() {
            notify.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Listens on `channel` until the store is dropped (`closed` fires), reconnecting after
/// any loss with a backoff of up to 5 s.
pub(crate) async fn listen(
    client: redis::Client,
    channel: String,
    wakeups: Weak<Wakeups>,
    mut closed: watch::Receiver<()>,
) {
    let mut retry = Duration::from_millis(100);
    loop {
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            subscribed = listen_once(&client, &channel, &wakeups) => {
                if subscribed {
                    retry = Duration::from_millis(100);
                }
            }
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

/// One subscription, until its connection is lost; whether it got as far as subscribing.
async fn listen_once(client: &redis::Client, channel: &str, wakeups: &Weak<Wakeups>) -> bool {
    let mut pubsub = match client.get_async_pubsub().await {
        Ok(pubsub) => pubsub,
        Err(error) => {
            tracing::debug!(%error, "wake-up subscription failed; polling meanwhile");
            return false;
        }
    };
    if let Err(error) = pubsub.subscribe(channel).await {
        tracing::debug!(%error, "SUBSCRIBE failed; polling meanwhile");
        return false;
    }
    // Whatever was published while nobody listened is gone: look now.
    match wakeups.upgrade() {
        Some(wakeups) => wakeups.wake_all(),
        None => return true,
    }
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let Some(wakeups) = wakeups.upgrade() else {
            return true;
        };
        if let Ok(queue) = message.get_payload::<String>() {
            wakeups.wake(&queue);
        }
    }
    true
}
