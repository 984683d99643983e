//! Opening the connection and telling a transient failure from a real error.

use std::time::Duration;

use brigade_queue::StoreError;
use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// One multiplexed connection that reconnects by itself after a loss: every call of
/// every clone of the store pipelines on it. Calls made while it is down fail at once
/// (as [`StoreError::Unavailable`], so workers back off and retry) rather than queue up.
/// Returns the client too, for the wake-up subscriber's own connection.
pub(crate) async fn connect(
    url: &str,
    response_timeout: Duration,
) -> Result<(redis::Client, ConnectionManager), StoreError> {
    let client = redis::Client::open(url)
        .map_err(|error| StoreError::invalid(format!("bad Redis URL: {error}")))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(response_timeout))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    let manager = ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(store_error)?;
    Ok((client, manager))
}

/// Connection losses, timeouts and a server that is loading or failing over are
/// transient; anything else the server said is a backend error.
pub(crate) fn store_error(error: RedisError) -> StoreError {
    let transient = error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_cluster_error()
        || matches!(
            error.code(),
            Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "READONLY" | "CLUSTERDOWN")
        );
    if transient {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Backend(Box::new(error))
    }
}
