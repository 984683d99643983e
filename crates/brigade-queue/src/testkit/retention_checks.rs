//! Checks on the retention task driving a store.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{FlakyStore, LONG_LEASE, PATIENCE, claim};
use crate::{MIN_RETENTION_INTERVAL, NewJob, Store, spawn_retention};

/// A retention pass that hangs (a store that stops answering) is given up, and the next
/// pass comes all the same: retention goes on once the store answers.
pub async fn retention_gives_up_a_pass_that_hangs<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("retained", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let claimed = claim(&store, "retained", 1, LONG_LEASE).await;
    assert_eq!(claimed.len(), 1);
    assert!(
        store
            .complete(claimed[0].lease())
            .await
            .expect("complete")
            .is_recorded()
    );
    flaky.stall_purges(1);
    let retention = spawn_retention(flaky, MIN_RETENTION_INTERVAL, Duration::ZERO);
    let deadline = Instant::now() + PATIENCE;
    while store.job(id).await.expect("job").is_some() {
        assert!(
            Instant::now() < deadline,
            "the finished job was never purged: retention hung on its first pass"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    retention.abort();
}
