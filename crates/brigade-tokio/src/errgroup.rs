use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use brigade_core::backend::ErrGroupState;
use brigade_core::{CancellationToken, ConfigError, ErrGroupCounts};
use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// A group of tasks where the first error cancels the others and [`wait`](Self::wait)
/// returns it: Go's `errgroup.WithContext` with `SetLimit`, on tokio.
///
/// Each task gets the group's [`CancellationToken`] (Go's derived context): the first task
/// to fail cancels it, and the others should watch it and stop. With a limit,
/// [`spawn`](Self::spawn) waits while that many tasks run, so a loop over ten thousand items
/// never has more than the limit in flight.
///
/// Dropping a group without waiting aborts its tasks (a Go group would leak them).
///
/// # Examples
///
/// ```
/// use brigade_tokio::ErrGroup;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut group = ErrGroup::with_limit(2).unwrap();
/// for item in 0..10u32 {
///     group
///         .spawn(move |token| async move {
///             if token.is_cancelled() {
///                 return Ok(()); // another item failed: stop early
///             }
///             if item == 3 { Err(format!("item {item} failed")) } else { Ok(()) }
///         })
///         .await;
/// }
/// assert_eq!(group.wait().await, Err("item 3 failed".to_string()));
/// # }
/// ```
pub struct ErrGroup<E> {
    state: Arc<ErrGroupState<E>>,
    limit: Option<Arc<Semaphore>>,
    tasks: JoinSet<()>,
}

impl<E: Send + 'static> ErrGroup<E> {
    /// A group with no limit on running tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = brigade_tokio::ErrGroup::<String>::new();
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
    /// A limit above tokio's [`Semaphore::MAX_PERMITS`] (which no group of tasks reaches)
    /// is taken as that maximum.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_tokio::ErrGroup::<String>::with_limit(0).is_err());
    /// assert!(brigade_tokio::ErrGroup::<String>::with_limit(usize::MAX).is_ok());
    /// assert!(brigade_tokio::ErrGroup::<String>::with_limit(4).is_ok());
    /// ```
    pub fn with_limit(limit: usize) -> Result<Self, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::ZeroWorkers);
        }
        Ok(Self::from_parts(
            CancellationToken::new(),
            // `Semaphore::new` panics above its maximum.
            Some(Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS)))),
        ))
    }

    /// Makes the group's token a child of `parent`: cancelling `parent` (a request, a pool's
    /// shutdown) cancels the group's tasks too. Call it before spawning.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = brigade_core::CancellationToken::new();
    /// let group = brigade_tokio::ErrGroup::<String>::new().child_of(&request);
    /// request.cancel();
    /// assert!(group.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn child_of(self, parent: &CancellationToken) -> Self {
        Self::from_parts(parent.child_token(), self.limit)
    }

    fn from_parts(token: CancellationToken, limit: Option<Arc<Semaphore>>) -> Self {
        ErrGroup {
            state: Arc::new(ErrGroupState::new(token)),
            limit,
            tasks: JoinSet::new(),
        }
    }

    /// The group's token, cancelled by the first error (or by the parent): a task that
    /// selects on `token.cancelled()` stops when a sibling fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut group = brigade_tokio::ErrGroup::new();
    /// let token = group.token();
    /// group.spawn(|_token| async { Err("disk full") }).await;
    /// token.cancelled().await; // woken by the failure
    /// assert_eq!(group.wait().await, Err("disk full"));
    /// # }
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
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut group = brigade_tokio::ErrGroup::<&str>::new();
    /// group.spawn(|_token| async { Ok(()) }).await;
    /// assert_eq!(group.counts().started, 1);
    /// assert_eq!(group.counts().running(), 1, "spawned, not yet run: nothing has yielded");
    /// assert_eq!(group.wait().await, Ok(()));
    /// # }
    /// ```
    #[must_use]
    pub fn counts(&self) -> ErrGroupCounts {
        self.state.counts()
    }

    /// Starts `task` with the group's token, first waiting while the limit's worth of tasks
    /// run (Go's `Go`).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future while it waits for room drops `task` unstarted;
    /// once it returns, the task is running in the group.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut group = brigade_tokio::ErrGroup::<String>::new();
    /// group.spawn(|_token| async { Ok(()) }).await;
    /// assert_eq!(group.wait().await, Ok(()));
    /// # }
    /// ```
    pub async fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let permit = match &self.limit {
            Some(limit) => Some(
                Arc::clone(limit)
                    .acquire_owned()
                    .await
                    .expect("the group never closes its semaphore"),
            ),
            None => None,
        };
        self.start(task, permit);
    }

    /// Starts `task` if the limit allows it now (Go's `TryGo`); gives it back if not.
    ///
    /// # Errors
    ///
    /// `Err(task)` when the limit's worth of tasks are running.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut group = brigade_tokio::ErrGroup::<String>::with_limit(1).unwrap();
    /// let gate = group.token();
    /// assert!(group.try_spawn(|token| async move { token.cancelled().await; Ok(()) }).is_ok());
    /// assert!(group.try_spawn(|_token| async { Ok(()) }).is_err(), "the limit is reached");
    /// gate.cancel();
    /// assert_eq!(group.wait().await, Ok(()));
    /// # }
    /// ```
    pub fn try_spawn<F, Fut>(&mut self, task: F) -> Result<(), F>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let permit = match &self.limit {
            Some(limit) => match Arc::clone(limit).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Err(task),
            },
            None => None,
        };
        self.start(task, permit);
        Ok(())
    }

    fn start<F, Fut>(&mut self, task: F, permit: Option<OwnedSemaphorePermit>)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        state.started();
        let running = task(state.token().clone());
        self.tasks.spawn(async move {
            let ended = AssertUnwindSafe(running).catch_unwind().await;
            state.end_task(ended, permit);
        });
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
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut group = brigade_tokio::ErrGroup::new();
    /// group.spawn(|_token| async { Err::<(), _>("broken") }).await;
    /// group.spawn(|token| async move { token.cancelled().await; Ok(()) }).await;
    /// assert_eq!(group.wait().await, Err("broken"));
    /// # }
    /// ```
    pub async fn wait(mut self) -> Result<(), E> {
        let mut panic = None;
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                if error.is_panic() {
                    self.state.token().cancel();
                    panic.get_or_insert(error.into_panic());
                }
            }
        }
        self.state.token().cancel();
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
        self.state.take_error().map_or(Ok(()), Err)
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
            .field(
                "limit",
                &self.limit.as_ref().map(|limit| limit.available_permits()),
            )
            .field("tasks", &self.tasks.len())
            .finish()
    }
}
