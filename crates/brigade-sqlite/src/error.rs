//! Driver errors sorted by what the caller should do next.

use brigade_queue::StoreError;

/// SQLite's primary result codes that mean "not now": the file is locked by another
/// writer past the busy timeout (`SQLITE_BUSY`, `SQLITE_LOCKED`), an I/O error, a full
/// disk, a file that cannot be opened right now, or a WAL lock protocol race.
const TRANSIENT_CODES: [i64; 6] = [5, 6, 10, 13, 14, 15];

/// Sorts a driver error into what a worker does next: wait and retry (the file is busy or
/// locked, or the disk failed for now), or give up on the call.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(error)),
        sqlx::Error::Database(database) => {
            // Extended result codes keep the primary code in their low byte.
            let code = database
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                .unwrap_or_default();
            if TRANSIENT_CODES.contains(&(code & 0xff)) {
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
