//! Retention as a periodic task: every store's `spawn_retention`.

use std::time::Duration;

use crate::Store;

/// The shortest wait between two retention passes: a pass is a store call that may
/// delete many rows, and an interval of zero would make the task a loop of them.
pub const MIN_RETENTION_INTERVAL: Duration = Duration::from_secs(1);

/// Deletes `store`'s completed and cancelled jobs that finished more than `keep` ago,
/// every `every` (at least [`MIN_RETENTION_INTERVAL`]), until the returned task is aborted
/// or the runtime stops. Dead jobs stay until replayed or purged by hand
/// ([`Store::purge_finished`] with `include_dead`). Any number of hosts may run it; a pass
/// that fails is logged and tried again at the next. A pass that takes longer than the
/// interval (a store that stopped answering) is given up then, and the next one starts:
/// the stores purge in slices, each its own commit, so what a pass deleted stays deleted.
///
/// Each store offers this as its own `spawn_retention` method.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(store: impl brigade_queue::Store) {
/// use std::time::Duration;
/// let retention = brigade_queue::spawn_retention(store, Duration::from_secs(600), Duration::from_secs(7 * 86_400));
/// // ... at shutdown:
/// retention.abort();
/// # }
/// ```
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::spawn` does.
pub fn spawn_retention<S: Store>(
    store: S,
    every: Duration,
    keep: Duration,
) -> tokio::task::JoinHandle<()> {
    let every = every.max(MIN_RETENTION_INTERVAL);
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(every, store.purge_finished(keep, false)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(purged)) => tracing::info!(purged, "retention deleted finished jobs"),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "retention failed; trying again next round");
                }
                Err(_elapsed) => {
                    tracing::warn!(
                        ?every,
                        "retention pass unanswered within its interval; trying again now"
                    );
                    // The interval has passed already.
                    continue;
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
