//! Go's `errgroup` with `SetLimit`, on OS threads.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use brigade_core::backend::ErrGroupState;
use brigade_core::{CancellationToken, ConfigError, ErrGroupCounts};

/// A group of threads where the first error cancels the others and [`wait`](Self::wait)
/// returns it: Go's `errgroup.WithContext` with `SetLimit`, on OS threads (the async twin is
/// `brigade_tokio::ErrGroup`, with the same names and rules).
///
/// Each task gets the group's [`CancellationToken`]: the first task to fail cancels it, and
/// the others should watch it (`is_cancelled`, or `wait_timeout` in place of a sleep) and
/// stop. With a limit, [`spawn`](Self::spawn) blocks while that many tasks run.
///
/// Dropping a group without waiting cancels its token and joins its threads, so no thread
/// outlives it.
///
/// # Examples
///
/// ```
/// use brigade_thread::ErrGroup;
///
/// let mut group = ErrGroup::with_limit(2).unwrap();
/// for item in 0..10u32 {
///     group.spawn(move |token| {
///         if token.is_cancelled() {
///             return Ok(()); // another item failed: stop early
///         }
///         if item == 3 { Err(format!("item {item} failed")) } else { Ok(()) }
///     });
/// }
/// assert_eq!(group.wait(), Err("item 3 failed".to_string()));
/// ```
pub struct ErrGroup<E> {
    state: Arc<ErrGroupState<E>>,
    permits: Option<Arc<Permits>>,
    threads: Vec<JoinHandle<()>>,
}

/// A counting semaphore: how many more tasks may run.
struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Permits {
    fn acquire(&self) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
    }

    fn try_acquire(&self) -> bool {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if *free == 0 {
            return false;
        }
        *free -= 1;
        true
    }

    fn release(&self) {
        *self.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.freed.notify_one();
    }
}

/// Gives a permit back when the task ends, even by a panic.
struct Permit(Option<Arc<Permits>>);

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(permits) = self.0.take() {
            permits.release();
        }
    }
}

impl<E: Send + 'static> ErrGroup<E> {
    /// A group with no limit on running tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_thread::ErrGroup::<String>::new();
    /// assert!(!group.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::from_parts(CancellationToken::new(), None)
    }

    /// A group running at most `limit` tasks at once (Go's `SetLimit`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroWorkers`] for a limit of 0, under which no task could ever run.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_thread::ErrGroup::<String>::with_limit(0).is_err());
    /// assert!(brigade_thread::ErrGroup::<String>::with_limit(4).is_ok());
    /// ```
    pub fn with_limit(limit: usize) -> Result<Self, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::ZeroWorkers);
        }
        let permits = Permits {
            free: Mutex::new(limit),
            freed: Condvar::new(),
        };
        Ok(Self::from_parts(
            CancellationToken::new(),
            Some(Arc::new(permits)),
        ))
    }

    /// Makes the group's token a child of `parent`: cancelling `parent` cancels the group's
    /// tasks too. Call it before spawning.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = brigade_core::CancellationToken::new();
    /// let group = brigade_thread::ErrGroup::<String>::new().child_of(&request);
    /// request.cancel();
    /// assert!(group.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn child_of(mut self, parent: &CancellationToken) -> Self {
        let permits = self.permits.take();
        Self::from_parts(parent.child_token(), permits)
    }

    fn from_parts(token: CancellationToken, permits: Option<Arc<Permits>>) -> Self {
        ErrGroup {
            state: Arc::new(ErrGroupState::new(token)),
            permits,
            threads: Vec::new(),
        }
    }

    /// The group's token, cancelled by the first error (or by the parent): hand it to work
    /// the group's tasks start elsewhere, so that stops with them.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut group = brigade_thread::ErrGroup::new();
    /// let token = group.token();
    /// group.spawn(|_token| Err("disk full"));
    /// assert_eq!(group.wait(), Err("disk full"));
    /// assert!(token.is_cancelled(), "the error cancelled the group's token");
    /// ```
    #[must_use]
    pub fn token(&self) -> CancellationToken {
        self.state.token().clone()
    }

    /// How many tasks started, finished and failed so far; a panicked task counts as
    /// finished and failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut group = brigade_thread::ErrGroup::with_limit(1).unwrap();
    /// group.spawn(|_token| Err("one"));
    /// group.spawn(|_token| Ok(())); // waits for the first to end: the limit is one
    /// let counts = group.counts();
    /// assert_eq!((counts.started, counts.failed), (2, 1));
    /// assert!(counts.running() <= 1);
    /// ```
    #[must_use]
    pub fn counts(&self) -> ErrGroupCounts {
        self.state.counts()
    }

    /// Starts `task` on a thread of its own with the group's token, first blocking while
    /// the limit's worth of tasks run (Go's `Go`).
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread, as `std::thread::spawn`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut group = brigade_thread::ErrGroup::<String>::new();
    /// group.spawn(|_token| Ok(()));
    /// assert_eq!(group.wait(), Ok(()));
    /// ```
    pub fn spawn<F>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Result<(), E> + Send + 'static,
    {
        if let Some(permits) = &self.permits {
            permits.acquire();
        }
        self.start(task);
    }

    /// Starts `task` if the limit allows it now (Go's `TryGo`); gives it back if not.
    ///
    /// # Errors
    ///
    /// `Err(task)` when the limit's worth of tasks are running.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut group = brigade_thread::ErrGroup::<String>::with_limit(1).unwrap();
    /// let gate = group.token();
    /// assert!(group.try_spawn(|token| { token.wait_timeout(std::time::Duration::from_secs(60)); Ok(()) }).is_ok());
    /// assert!(group.try_spawn(|_token| Ok(())).is_err(), "the limit is reached");
    /// gate.cancel();
    /// assert_eq!(group.wait(), Ok(()));
    /// ```
    pub fn try_spawn<F>(&mut self, task: F) -> Result<(), F>
    where
        F: FnOnce(CancellationToken) -> Result<(), E> + Send + 'static,
    {
        if let Some(permits) = &self.permits {
            if !permits.try_acquire() {
                return Err(task);
            }
        }
        self.start(task);
        Ok(())
    }

    fn start<F>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Result<(), E> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        let permit = Permit(self.permits.clone());
        state.started();
        self.threads.push(thread::spawn(move || {
            let token = state.token().clone();
            let ended = catch_unwind(AssertUnwindSafe(move || task(token)));
            state.end_task(ended, permit);
        }));
    }

    /// Waits for every task and returns the first error, if any (Go's `Wait`). The group's
    /// token is cancelled when it returns, as Go cancels the group's context.
    ///
    /// # Errors
    ///
    /// The first error a task returned.
    ///
    /// # Panics
    ///
    /// If a task panicked: the panic is resumed here once every other task has ended (the
    /// panic cancels the group's token first, so they are asked to stop).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut group = brigade_thread::ErrGroup::new();
    /// group.spawn(|_token| Err::<(), _>("broken"));
    /// group.spawn(|token| { token.wait_timeout(std::time::Duration::from_secs(60)); Ok(()) });
    /// assert_eq!(group.wait(), Err("broken"));
    /// ```
    pub fn wait(mut self) -> Result<(), E> {
        let payload = self.join_all();
        if let Some(payload) = payload {
            std::panic::resume_unwind(payload);
        }
        self.state.take_error().map_or(Ok(()), Err)
    }

    /// Joins every thread; returns the first panic's payload.
    fn join_all(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        let mut panic = None;
        for thread in self.threads.drain(..) {
            if let Err(payload) = thread.join() {
                self.state.token().cancel();
                panic.get_or_insert(payload);
            }
        }
        self.state.token().cancel();
        panic
    }
}

impl<E> Drop for ErrGroup<E> {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        // Not waited for: ask the tasks to stop, and join them so none outlives the group.
        self.state.token().cancel();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl<E: Send + 'static> Default for ErrGroup<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for ErrGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrGroup")
            .field("state", &self.state)
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_first_error_cancels_the_others_and_wait_returns_it() {
        let mut group = ErrGroup::with_limit(4).unwrap();
        let stopped_early = Arc::new(AtomicUsize::new(0));
        for item in 0..4u32 {
            let stopped_early = Arc::clone(&stopped_early);
            group.spawn(move |token| {
                if item == 0 {
                    thread::sleep(Duration::from_millis(10));
                    return Err(format!("item {item} failed"));
                }
                if token.wait_timeout(Duration::from_secs(60)) {
                    stopped_early.fetch_add(1, Ordering::SeqCst);
                    return Err("cancelled".to_string());
                }
                Ok(())
            });
        }
        assert_eq!(group.wait(), Err("item 0 failed".to_string()));
        assert_eq!(stopped_early.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn spawn_blocks_at_the_limit() {
        let mut group = ErrGroup::<String>::with_limit(3).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        for _ in 0..30 {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            group.spawn(move |_token| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            });
            assert!(group.counts().running() <= 3);
        }
        assert_eq!(group.wait(), Ok(()));
        assert!(most.load(Ordering::SeqCst) <= 3);
    }

    #[test]
    #[should_panic(expected = "task exploded")]
    fn a_panicking_task_panics_wait() {
        let mut group = ErrGroup::<String>::new();
        group.spawn(|_token| panic!("task exploded"));
        let _ = group.wait();
    }

    #[test]
    fn dropping_a_group_cancels_and_joins_its_threads() {
        let finished = Arc::new(AtomicUsize::new(0));
        let mut group = ErrGroup::<String>::new();
        for _ in 0..3 {
            let finished = Arc::clone(&finished);
            group.spawn(move |token| {
                token.wait_timeout(Duration::from_secs(60));
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        drop(group);
        assert_eq!(finished.load(Ordering::SeqCst), 3);
    }
}
