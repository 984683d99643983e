use brigade_queue::StoreError;

/// Sorts a driver error into what a worker does next: wait and retry (the server is
/// unreachable, restarting, out of connections or resources, read-only after a failover
/// to a standby, timed the statement or a lock wait out, ended a transaction left idle,
/// or chose this transaction as a deadlock victim),
/// refuse the request (a value its column cannot hold), or give up on the call.
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
                || code.starts_with("53") // insufficient resources: connections, memory, disk
                || code == "57014" // query cancelled: a statement timeout
                || code == "55P03" // lock not available: a lock timeout
                || code == "25006" // read-only transaction: connected to a standby
                || code == "25P03" // the server ended a transaction left idle past its bound
                || code == "40001" // serialization failure
                || code == "40P01"; // deadlock detected
            if transient {
                StoreError::Unavailable(Box::new(error))
            } else if code.starts_with("22") {
                // Data exception: a NUL in text, `\u0000` in jsonb, a time out of range.
                StoreError::Invalid(error.to_string())
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

/// Whether `error` is a job made live colliding on the unique index of live keys
/// (`jobs_unique_live`, migration 1) with a job another transaction made live and
/// committed while the statement ran: after its snapshot was taken, so its own check for
/// a live job with the key could not see it.
pub(crate) fn takes_a_live_key(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(database) => {
            database.code().as_deref() == Some("23505")
                && database.constraint() == Some("jobs_unique_live")
        }
        _ => false,
    }
}
