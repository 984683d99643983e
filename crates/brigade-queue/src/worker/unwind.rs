//! Store calls made by the worker's own tasks, with a panic in the store's code caught
//! where it happens.
//!
//! The tasks that flush acks, renew leases and rescue expired ones live as long as the
//! worker: a panic that ended one would leave the worker running without it (acks that
//! wait for good, runs fenced off one after another), with nothing to say so.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

use brigade_core::backend::panic_message;

use crate::StoreError;

/// Runs `future` to its end; a panic while it is polled ends it with the panic's message.
pub(crate) async fn unwind_caught<F: Future>(future: F) -> Result<F::Output, String> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            // Never polled again: a future that panicked is not resumed.
            Err(panic) => Poll::Ready(Err(panic_message(panic.as_ref()))),
        }
    })
    .await
}

/// A store call that panicked, as a failed call: whether it changed anything is not
/// known, as for a call that timed out, so its caller treats it the same way.
pub(crate) fn panicked(message: &str) -> StoreError {
    StoreError::Unavailable(format!("a store call panicked: {message}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_a_call_is_its_end() {
        assert_eq!(unwind_caught(async { 7 }).await, Ok(7));
        let caught = unwind_caught(async {
            tokio::task::yield_now().await;
            panic!("store bug");
        })
        .await;
        assert_eq!(caught, Err::<(), _>("store bug".to_owned()));
        let error = panicked("store bug");
        assert!(error.is_transient(), "{error}");
        assert!(error.to_string().contains("store bug"), "{error}");
    }
}
