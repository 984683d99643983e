//! Dropping a store call part way, as a caller's timeout or a dropped request does.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

/// Polls `future` at most `polls` times, asking to be polled again at once each time, then
/// drops it unfinished; `Some` with its output if it finished first. A cancellation at a
/// point that moves with `polls` and with how far the store got in between: a store's
/// cancellation test sweeps `polls` over a range.
///
/// # Examples
///
/// ```
/// use brigade_queue::testkit::abandon_after;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(abandon_after(async { 7 }, 1).await, Some(7));
/// assert_eq!(abandon_after(std::future::pending::<u8>(), 3).await, None);
/// # });
/// ```
pub async fn abandon_after<F: Future>(future: F, polls: u32) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut polled = 0;
    poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => {
            polled += 1;
            if polled >= polls {
                Poll::Ready(None)
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    })
    .await
}
