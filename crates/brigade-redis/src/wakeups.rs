//! Wake-ups from other processes. The scripts that make a job claimable (enqueue,
//! release, rescue, replay) `PUBLISH` the queue's name on the store's jobs channel,
//! `<prefix>:wakeups`, and the script that gives units back publishes the limit's key on
//! `<prefix>:units`; one subscribed connection per store (pub/sub needs a connection of
//! its own) fires this process's wake-ups. This process's own enqueues and releases also
//! wake its workers directly, without the round trip. A wake-up is a hint: messages sent
//! while the subscriber reconnects are lost, so every (re)subscription wakes every
//! waiter, and workers poll behind it.

use std::sync::Weak;
use std::time::Duration;

use brigade_queue::Wakeups;
use futures_util::StreamExt;
use tokio::sync::watch;

/// The two channels a store subscribes to.
#[derive(Clone, Debug)]
pub(crate) struct Channels {
    /// Payload: a queue whose jobs may be claimable.
    pub(crate) jobs: String,
    /// Payload: a global concurrency limit whose units came back.
    pub(crate) units: String,
}

/// Listens on `channels` until the store is dropped (`closed` fires), reconnecting after
/// any loss with a backoff of up to 5 s.
pub(crate) async fn listen(
    client: redis::Client,
    channels: Channels,
    wakeups: Weak<Wakeups>,
    mut closed: watch::Receiver<()>,
) {
    let mut retry = Duration::from_millis(100);
    loop {
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            subscribed = listen_once(&client, &channels, &wakeups) => {
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
async fn listen_once(client: &redis::Client, channels: &Channels, wakeups: &Weak<Wakeups>) -> bool {
    let mut pubsub = match client.get_async_pubsub().await {
        Ok(pubsub) => pubsub,
        Err(error) => {
            tracing::debug!(%error, "wake-up subscription failed; polling meanwhile");
            return false;
        }
    };
    let subscribed = pubsub
        .subscribe(&[channels.jobs.as_str(), channels.units.as_str()])
        .await;
    if let Err(error) = subscribed {
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
        let Ok(name) = message.get_payload::<String>() else {
            continue;
        };
        if message.get_channel_name() == channels.units {
            wakeups.wake_units(&name);
        } else {
            wakeups.wake_queue(&name);
        }
    }
    true
}
