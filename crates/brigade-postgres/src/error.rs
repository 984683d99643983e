use brigade_queue::StoreError;

/// Sorts a driver error into what a worker does next: wait and retry (the server is
/// unreachable, restarting, out of connections, or chose this transaction as a deadlock
/// victim), or give up on the call.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(error)),
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            let transient = code.starts_with("08") // connection exception
                || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
                || code == "53300" // too many connections
                || code == "40001" // serialization failure
                || code == "40P01"; // deadlock detected
            if transient {
                StoreError::Unavailable(Box::new(error))
            } else {
                StoreError::Backend(Box::new(error))
            }
        }
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
            StoreError::Corrupt(error.to_string())
        }
        _ => StoreError::Backend(Box::new(error)),
    }
}
