use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::CancellationToken;

/// The runtime-free heart of an error group (Go's `errgroup`): the group's cancellation
/// token, the slot that keeps the first error, and counts of the group's tasks. Each
/// backend's group adds its own way to run tasks and to wait for them.
///
/// The first task to fail stores its error and cancels the token; later errors are counted
/// and dropped, as in Go.
///
/// # Examples
///
/// ```
/// use brigade_core::CancellationToken;
/// use brigade_core::backend::ErrGroupState;
///
/// let group = ErrGroupState::new(CancellationToken::new());
/// group.started();
/// group.started();
/// assert!(group.finish(Err::<(), _>("first")));
/// assert!(!group.finish(Err("second")));
/// assert!(group.token().is_cancelled());
/// assert_eq!(group.take_error(), Some("first"));
/// assert_eq!(group.counts().failed, 2);
/// ```
pub struct ErrGroupState<E> {
    token: CancellationToken,
    first_error: Mutex<FirstError<E>>,
    started: AtomicU64,
    finished: AtomicU64,
    failed: AtomicU64,
}

/// The first error's slot: it stays `Taken` once read, so a later error is never mistaken
/// for the first.
enum FirstError<E> {
    None,
    Some(E),
    Taken,
}

/// How many tasks of an error group started, finished and failed.
///
/// # Examples
///
/// ```
/// let counts = brigade_core::ErrGroupCounts::default();
/// assert_eq!(counts.running(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrGroupCounts {
    /// Tasks started.
    pub started: u64,
    /// Tasks that ended: returned (with or without an error) or panicked.
    pub finished: u64,
    /// Tasks that returned an error or panicked.
    pub failed: u64,
}

impl ErrGroupCounts {
    /// Tasks started and not yet finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let counts = brigade_core::ErrGroupCounts { started: 3, finished: 1, failed: 0 };
    /// assert_eq!(counts.running(), 2);
    /// ```
    #[must_use]
    pub fn running(&self) -> u64 {
        self.started.saturating_sub(self.finished)
    }
}

impl<E> ErrGroupState<E> {
    /// A group whose tasks watch `token`; pass a child of a wider token (a pool's, a
    /// request's) to have that cancel the group too.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::CancellationToken;
    /// use brigade_core::backend::ErrGroupState;
    ///
    /// let request = CancellationToken::new();
    /// let group = ErrGroupState::<String>::new(request.child_token());
    /// request.cancel();
    /// assert!(group.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn new(token: CancellationToken) -> Self {
        ErrGroupState {
            token,
            first_error: Mutex::new(FirstError::None),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The group's token: cancelled by the first error.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_core::backend::ErrGroupState::<()>::new(Default::default());
    /// assert!(!group.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Counts a task that starts.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_core::backend::ErrGroupState::<()>::new(Default::default());
    /// group.started();
    /// assert_eq!(group.counts().running(), 1);
    /// ```
    pub fn started(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    /// Records a task's result; returns whether it was the group's first error (and so
    /// cancelled the token).
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_core::backend::ErrGroupState::new(Default::default());
    /// group.started();
    /// assert!(!group.finish(Ok::<(), String>(())));
    /// assert!(!group.token().is_cancelled());
    /// ```
    pub fn finish(&self, result: Result<(), E>) -> bool {
        let first = match result {
            Ok(()) => false,
            Err(error) => {
                self.failed.fetch_add(1, Ordering::AcqRel);
                let mut slot = self.lock();
                let first = matches!(*slot, FirstError::None);
                if first {
                    *slot = FirstError::Some(error);
                }
                first
            }
        };
        self.finished.fetch_add(1, Ordering::AcqRel);
        if first {
            self.token.cancel();
        }
        first
    }

    /// Records a task that panicked: counted as finished and failed, and the token is
    /// cancelled at once, so the other tasks are asked to stop while the panic travels to
    /// whoever waits for the group. The panic itself is not an error of type `E`: the
    /// backend resumes it from its `wait`.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_core::backend::ErrGroupState::<String>::new(Default::default());
    /// group.started();
    /// group.finish_panicked();
    /// assert!(group.token().is_cancelled());
    /// assert_eq!(group.counts().running(), 0);
    /// assert_eq!(group.take_error(), None);
    /// ```
    pub fn finish_panicked(&self) {
        self.failed.fetch_add(1, Ordering::AcqRel);
        self.finished.fetch_add(1, Ordering::AcqRel);
        self.token.cancel();
    }

    /// Records how a task ended, then frees `permit` (the room under the group's limit the
    /// task held), in that order: an error cancels the token before a spawn waiting for room
    /// starts another task, and `counts().running()` never exceeds the limit. A panic goes
    /// through the same books (it cancels the token now, not when the group's `wait` reaches
    /// it) and is then resumed, to travel on to `wait` through the task's join.
    ///
    /// # Panics
    ///
    /// Resumes the task's panic when `ended` holds one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::panic::{AssertUnwindSafe, catch_unwind};
    /// let group = brigade_core::backend::ErrGroupState::new(Default::default());
    /// group.started();
    /// let permit = ();
    /// group.end_task(catch_unwind(|| Err::<(), _>("broken")), permit);
    /// assert!(group.token().is_cancelled());
    /// assert_eq!(group.take_error(), Some("broken"));
    ///
    /// group.started();
    /// let ended = catch_unwind(|| -> Result<(), &str> { panic!("exploded") });
    /// assert!(catch_unwind(AssertUnwindSafe(|| group.end_task(ended, ()))).is_err());
    /// assert_eq!(group.counts().running(), 0);
    /// ```
    pub fn end_task<P>(&self, ended: std::thread::Result<Result<(), E>>, permit: P) {
        match ended {
            Ok(result) => {
                self.finish(result);
                drop(permit);
            }
            Err(payload) => {
                self.finish_panicked();
                drop(permit);
                std::panic::resume_unwind(payload);
            }
        }
    }

    /// Whether a task has failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_core::backend::ErrGroupState::<()>::new(Default::default());
    /// assert!(!group.has_failed());
    /// ```
    #[must_use]
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire) > 0
    }

    /// Takes the first error, once; the group remembers it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_core::backend::ErrGroupState::new(Default::default());
    /// group.finish(Err::<(), _>(7));
    /// assert_eq!(group.take_error(), Some(7));
    /// assert_eq!(group.take_error(), None);
    /// ```
    pub fn take_error(&self) -> Option<E> {
        let mut slot = self.lock();
        match std::mem::replace(&mut *slot, FirstError::Taken) {
            FirstError::Some(error) => Some(error),
            FirstError::None => {
                *slot = FirstError::None;
                None
            }
            FirstError::Taken => None,
        }
    }

    /// The group's counts.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_core::backend::ErrGroupState::<()>::new(Default::default());
    /// assert_eq!(group.counts(), brigade_core::ErrGroupCounts::default());
    /// ```
    #[must_use]
    pub fn counts(&self) -> ErrGroupCounts {
        ErrGroupCounts {
            finished: self.finished.load(Ordering::Acquire),
            failed: self.failed.load(Ordering::Acquire),
            started: self.started.load(Ordering::Acquire),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FirstError<E>> {
        // Nothing panics while the slot is held; a poisoned slot is still a valid slot.
        self.first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<E> fmt::Debug for ErrGroupState<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrGroupState")
            .field("token", &self.token)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}
