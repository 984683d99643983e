//! LISTEN/NOTIFY: enqueues and releases notify the schema's jobs channel with the queue's
//! name, and a release of a global limit's units notifies its units channel with the
//! limit's key; one listening connection per store fires the process's wake-ups.

use std::sync::Weak;
use std::time::Duration;

use brigade_queue::Wakeups;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

/// The two channels a store listens on.
#[derive(Clone, Debug)]
pub(crate) struct Channels {
    /// Payload: a queue whose jobs may be claimable.
    pub(crate) jobs: String,
    /// Payload: a global concurrency limit whose units came back.
    pub(crate) units: String,
}

/// Listens on `channels` until the store is dropped (`closed` fires), reconnecting after
/// any loss. After each (re)connect every waiter is woken, since notifications sent while
/// nobody listened are gone; the workers' polling covers the gap before that.
pub(crate) async fn listen(
    pool: PgPool,
    channels: Channels,
    wakeups: Weak<Wakeups>,
    mut closed: watch::Receiver<()>,
) {
    const FIRST_RETRY: Duration = Duration::from_millis(100);
    let mut retry = FIRST_RETRY;
    loop {
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            listened = listen_once(&pool, &channels, &wakeups) => {
                // A connection that was listening and then dropped starts the backoff
                // over: only failures in a row lengthen it.
                if listened {
                    retry = FIRST_RETRY;
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

/// Listens until the connection fails; whether it got as far as listening.
async fn listen_once(pool: &PgPool, channels: &Channels, wakeups: &Weak<Wakeups>) -> bool {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::debug!(%error, "LISTEN connection failed; polling meanwhile");
            return false;
        }
    };
    let listened = listener
        .listen_all([channels.jobs.as_str(), channels.units.as_str()])
        .await;
    if let Err(error) = listened {
        tracing::debug!(%error, "LISTEN failed; polling meanwhile");
        return false;
    }
    match wakeups.upgrade() {
        Some(wakeups) => wakeups.wake_all(),
        None => return true,
    }
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                let Some(wakeups) = wakeups.upgrade() else {
                    return true;
                };
                if notification.channel() == channels.units {
                    wakeups.wake_units(notification.payload());
                } else {
                    wakeups.wake_queue(notification.payload());
                }
            }
            Ok(None) => {
                tracing::debug!("LISTEN connection lost; reconnecting");
                return true;
            }
            Err(error) => {
                tracing::debug!(%error, "LISTEN connection failed; reconnecting");
                return true;
            }
        }
    }
}
