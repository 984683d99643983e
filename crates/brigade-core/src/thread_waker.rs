//! A [`Waker`] that unparks a thread: how a blocked thread (`JobHandle::join`,
//! `CancellationToken::wait_timeout`) waits on the same wake-up paths async waiters use,
//! with no condition variable of its own.

use std::sync::Arc;
use std::task::{Wake, Waker};

use crate::sync::{Thread, current};

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn new_waker() -> Waker {
    Waker::from(Arc::new(ThreadWaker(current())))
}

#[cfg(not(brigade_loom))]
thread_local! {
    /// Made once per thread that ever blocks: waking it is unparking that thread.
    static CURRENT: Waker = new_waker();
}

/// A waker that unparks the calling thread. Its waits must loop: `park` may return early,
/// and a wake meant for an earlier wait may arrive during a later one.
#[cfg(not(brigade_loom))]
pub(crate) fn current_thread_waker() -> Waker {
    // A thread that blocks while its thread-locals are being torn down makes one afresh.
    CURRENT
        .try_with(Waker::clone)
        .unwrap_or_else(|_| new_waker())
}

/// Under loom each model thread makes its own (loom's threads are not the thread-local's).
#[cfg(brigade_loom)]
pub(crate) fn current_thread_waker() -> Waker {
    new_waker()
}
