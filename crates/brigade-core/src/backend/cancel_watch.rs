//! Cancels heard while a job waits off the workers: in a backend's delay queue (a retry's
//! backoff, a start deferred to a time) or parked for capacity. Nothing there looks at the
//! job's token, so without a watch a cancelled job would wait out its time, or the capacity
//! it will never use, before its start found it cancelled; and a graceful shutdown with it.
//!
//! A job set aside has its token carry a waker of its pool's, registered under the pool's
//! own key (a retry's second wait replaces the first registration). A cancel wakes it: the
//! watch notes that a cancel is pending and wakes the backend's timer, which takes the
//! cancelled jobs out of its delay queue and hands them to
//! [`JobDriver::end_cancelled`](super::JobDriver::end_cancelled), which also takes the
//! parked ones. The job's start removes the registration. Only jobs with a handle are
//! watched: a job without one is cancelled only with the pool, whose aborting shutdown
//! takes every waiting job out itself. A job that never waits is never watched, so the
//! plain submit-to-run path pays nothing for any of this.
//!
//! **No cancel lost.** The driver registers on the job's token, puts the job in the
//! backend's queue, then looks at the token once more. A cancel before the registration
//! woke nobody and is seen by that look (the token's lock orders the two), which wakes the
//! timer itself. A cancel after it wakes the timer, whose look at the queue finds the job;
//! or, if that look came before the job was put there, the queue's lock orders the look,
//! and so the cancel, before the driver's look, which sees the cancel and wakes the timer
//! again (loom model below). The timer takes the pending mark under the lock its waker
//! takes, so a wake-up is never lost between its look and its sleep.

use std::sync::{Arc, OnceLock};
use std::task::{Wake, Waker};

use super::{Done, Task};
use crate::CancellationToken;
use crate::cancel::waiter_key;
use crate::sync::atomic::{AtomicBool, Ordering};

/// See the module docs.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::task::{Wake, Waker};
/// use brigade_core::backend::CancelWatch;
///
/// struct Timer(AtomicBool);
/// impl Wake for Timer {
///     fn wake(self: Arc<Self>) {
///         self.0.store(true, Ordering::SeqCst);
///     }
/// }
///
/// let timer = Arc::new(Timer(AtomicBool::new(false)));
/// let watch = CancelWatch::new();
/// watch.wake_with(Waker::from(Arc::clone(&timer)));
/// assert!(!watch.take_pending());
/// ```
pub struct CancelWatch {
    /// This pool's registrations on its jobs' tokens.
    key: u64,
    signal: Arc<Signal>,
    /// What a job's token is given: wakes `signal`.
    waker: Waker,
}

/// What a cancel of a watched job wakes.
struct Signal {
    pending: AtomicBool,
    /// The backend's timer.
    backend: OnceLock<Waker>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Set before the timer is woken, which looks at it under its own lock. A swap where
        // a store would do: loom lets a plain store slip inside a concurrent swap
        // (tokio-rs/loom#254), and its model would report a cancel lost that cannot be.
        self.pending.swap(true, Ordering::SeqCst);
        if let Some(backend) = self.backend.get() {
            backend.wake_by_ref();
        }
    }
}

/// A job just registered by [`CancelWatch::watch`]: its token, for the look once the
/// job is in the backend's queue.
#[must_use = "look again once the job is in its queue"]
pub(crate) struct Watched(Option<CancellationToken>);

impl Default for CancelWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelWatch {
    /// A watch whose cancels wake nobody until [`wake_with`](Self::wake_with).
    ///
    /// # Examples
    ///
    /// See [`CancelWatch`].
    #[must_use]
    pub fn new() -> Self {
        let signal = Arc::new(Signal {
            pending: AtomicBool::new(false),
            backend: OnceLock::new(),
        });
        CancelWatch {
            key: waiter_key(),
            waker: Waker::from(Arc::clone(&signal)),
            signal,
        }
    }

    /// How the backend is told of a cancel: `waker` wakes its timer, which then calls
    /// [`take_pending`](Self::take_pending). Set once; later calls are ignored.
    ///
    /// # Examples
    ///
    /// See [`CancelWatch`].
    pub fn wake_with(&self, waker: Waker) {
        let _ = self.signal.backend.set(waker);
    }

    /// Whether a watched job was cancelled since the last call. Call it where the timer
    /// decides to sleep, under the lock its waker takes before waking it, so that a cancel
    /// is either seen here or wakes the sleep.
    ///
    /// # Examples
    ///
    /// See [`CancelWatch`].
    #[must_use]
    pub fn take_pending(&self) -> bool {
        self.signal.pending.swap(false, Ordering::SeqCst)
    }

    /// Registers on `task`'s token before the job is set aside, and marks the task
    /// watched, so that its start removes the registration.
    pub(crate) fn watch<J, T, E>(&self, task: &mut Task<J, T, E>) -> Watched
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let Done::Handle(completer) = &task.done else {
            return Watched(None);
        };
        let token = completer.token();
        token.register_alone(self.key, &self.waker);
        task.attempts.cancel_watched();
        Watched(Some(token))
    }

    /// Looks at the token again once the job is in its queue (see the module docs).
    pub(crate) fn look_again(&self, watched: Watched) {
        if watched.0.is_some_and(|token| token.is_cancelled()) {
            self.signal.wake_by_ref();
        }
    }

    /// Removes the registration of a job coming back from its wait, if it has one.
    pub(crate) fn unwatch<J, T, E>(&self, task: &mut Task<J, T, E>)
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        if !task.attempts.take_cancel_watched() {
            return;
        }
        if let Done::Handle(completer) = &task.done {
            completer.token().deregister_alone(self.key);
        }
    }
}

impl std::fmt::Debug for CancelWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelWatch")
            .field("pending", &self.signal.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(brigade_loom)))]
mod tests {
    use super::*;
    use crate::JobId;
    use crate::backend::job_handle;

    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn wakes(count: &Count) -> usize {
        count.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn a_cancel_while_watched_wakes_the_backend_once_and_none_after_the_unwatch() {
        let count = Arc::new(Count(Default::default()));
        let watch = CancelWatch::new();
        watch.wake_with(Waker::from(Arc::clone(&count)));
        let pool = CancellationToken::new();
        let (first, completer) = job_handle::<(), ()>(JobId::new(1), &pool);
        let mut task = Task::new((), Done::Handle(completer));
        let watched = watch.watch(&mut task);
        watch.look_again(watched);
        assert_eq!(wakes(&count), 0);
        first.cancel();
        assert_eq!(wakes(&count), 1);
        assert!(watch.take_pending());
        assert!(!watch.take_pending());

        let (second, completer) = job_handle::<(), ()>(JobId::new(2), &pool);
        let mut task = Task::new((), Done::Handle(completer));
        let watched = watch.watch(&mut task);
        watch.look_again(watched);
        watch.unwatch(&mut task);
        second.cancel();
        assert_eq!(wakes(&count), 1, "no longer watched");
        assert!(!watch.take_pending());
    }

    #[test]
    fn a_cancel_before_the_registration_is_seen_by_the_second_look() {
        let count = Arc::new(Count(Default::default()));
        let watch = CancelWatch::new();
        watch.wake_with(Waker::from(Arc::clone(&count)));
        let (handle, completer) = job_handle::<(), ()>(JobId::new(1), &CancellationToken::new());
        handle.cancel();
        let mut task = Task::new((), Done::Handle(completer));
        let watched = watch.watch(&mut task);
        watch.look_again(watched);
        assert_eq!(wakes(&count), 1);
        assert!(watch.take_pending());
    }
}

/// Model: a cancel racing a job being set aside and the timer's look. Whatever the order,
/// the timer's look found the job cancelled, or a cancel is still pending for its next
/// look (while the job waits in the queue, where that look will find it).
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use loom::sync::{Arc, Mutex};

    use super::*;
    use crate::JobId;
    use crate::backend::job_handle;

    #[test]
    fn loom_a_cancel_racing_a_set_aside_and_the_timers_look_is_never_lost() {
        loom::model(|| {
            let watch = Arc::new(CancelWatch::new());
            watch.wake_with(Waker::noop().clone());
            let queue = Arc::new(Mutex::new(Vec::new()));
            let pool = CancellationToken::new();
            let (handle, completer) = job_handle::<(), ()>(JobId::new(1), &pool);
            let canceller = loom::thread::spawn(move || handle.cancel());
            let timer = {
                let (watch, queue) = (Arc::clone(&watch), Arc::clone(&queue));
                loom::thread::spawn(move || {
                    watch.take_pending()
                        && queue
                            .lock()
                            .unwrap()
                            .iter()
                            .any(|task: &Task<u8, (), ()>| task.done.is_cancelled(&pool))
                })
            };
            let mut task = Task::new(7u8, Done::Handle(completer));
            let watched = watch.watch(&mut task);
            queue.lock().unwrap().push(task);
            watch.look_again(watched);
            canceller.join().unwrap();
            let found = timer.join().unwrap();
            assert!(
                found || watch.take_pending(),
                "the cancel reached neither the timer's look nor its next one"
            );
        });
    }
}
