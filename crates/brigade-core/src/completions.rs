use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use crate::{JobHandle, JobId, JobResult};

/// Handles whose results come out in the order the jobs finish, as the results channel of
/// a classic worker pool: from a thread, iterate it (or call
/// [`blocking_next`](Self::blocking_next)); from async code, `.next().await` (an inherent
/// method, so it never resolves to the blocking `Iterator::next`) or use it as a [`Stream`].
///
/// # Examples
///
/// ```
/// use brigade_core::{CancellationToken, Completions, JobHandle, JobId};
/// use brigade_core::backend::job_handle;
///
/// let pool = CancellationToken::new();
/// let mut completions = Completions::new();
/// let (first, first_completer) = job_handle::<u32, ()>(JobId::new(1), &pool);
/// let (second, second_completer) = job_handle::<u32, ()>(JobId::new(2), &pool);
/// completions.push(first);
/// completions.push(second);
/// second_completer.complete(Ok(20));
/// first_completer.complete(Ok(10));
/// let order: Vec<_> = completions.map(|(id, result)| (id.get(), result.unwrap())).collect();
/// assert_eq!(order, vec![(2, 20), (1, 10)]);
/// ```
pub struct Completions<T, E> {
    pending: HashMap<usize, JobHandle<T, E>>,
    inbox: Arc<Inbox>,
}

/// The keys of finished jobs' handles, in the order they finished.
pub(crate) struct Inbox {
    finished: Mutex<InboxState>,
    ready: Condvar,
}

struct InboxState {
    keys: VecDeque<usize>,
    waker: Option<Waker>,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, key: usize) {
        let mut state = self.lock();
        state.keys.push_back(key);
        let waker = state.waker.take();
        drop(state);
        self.ready.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T, E> Completions<T, E> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let completions = brigade_core::Completions::<u8, ()>::new();
    /// assert!(completions.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Completions {
            pending: HashMap::new(),
            inbox: Arc::new(Inbox {
                finished: Mutex::new(InboxState {
                    keys: VecDeque::new(),
                    waker: None,
                }),
                ready: Condvar::new(),
            }),
        }
    }

    /// Adds a handle; its result comes out when its job ends.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, Completions, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let mut completions = Completions::new();
    /// let (handle, _completer) = job_handle::<u8, ()>(JobId::new(1), &CancellationToken::new());
    /// completions.push(handle);
    /// assert_eq!(completions.len(), 1);
    /// ```
    pub fn push(&mut self, handle: JobHandle<T, E>) {
        handle.notify(&self.inbox);
        // Keyed by the handle, not its id: handles of several pools may share ids.
        self.pending.insert(handle.key(), handle);
    }

    /// How many results have not come out yet.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::Completions::<u8, ()>::new().len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether every result has come out.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::Completions::<u8, ()>::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next finished job, if one has finished, without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, Completions, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let mut completions = Completions::new();
    /// let (handle, completer) = job_handle::<u8, ()>(JobId::new(1), &CancellationToken::new());
    /// completions.push(handle);
    /// assert!(completions.try_next().is_none());
    /// completer.complete(Ok(3));
    /// assert_eq!(completions.try_next().unwrap().1.unwrap(), 3);
    /// ```
    pub fn try_next(&mut self) -> Option<(JobId, JobResult<T, E>)> {
        loop {
            let key = self.inbox.lock().keys.pop_front()?;
            if let Some(finished) = self.take(key) {
                return Some(finished);
            }
        }
    }

    /// The next result in completion order, waiting without blocking the thread; `None`
    /// once every handle has come out. This is the `next` async code reaches for: as a
    /// method of the type it comes before `Iterator::next` (which blocks) and needs no
    /// `StreamExt` import.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a result is taken from its handle only when it is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, Completions, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// # futures_executor_block_on(async {
    /// let mut completions = Completions::new();
    /// let (handle, completer) = job_handle::<u8, ()>(JobId::new(1), &CancellationToken::new());
    /// completions.push(handle);
    /// completer.complete(Ok(3));
    /// assert_eq!(completions.next().await.unwrap().1.unwrap(), 3);
    /// assert!(completions.next().await.is_none());
    /// # });
    /// # fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #         if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
    /// #             return out;
    /// #         }
    /// #     }
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<(JobId, JobResult<T, E>)> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The next result in completion order, blocking the calling thread until a job
    /// finishes; `None` once every handle has come out. For threads: in async code use
    /// [`next`](Self::next). Iterating a `Completions` (`for result in completions`) calls
    /// this.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, Completions, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let mut completions = Completions::new();
    /// let (handle, completer) = job_handle::<u8, ()>(JobId::new(1), &CancellationToken::new());
    /// completions.push(handle);
    /// std::thread::spawn(move || completer.complete(Ok(3)));
    /// assert_eq!(completions.blocking_next().unwrap().1.unwrap(), 3);
    /// assert!(completions.blocking_next().is_none());
    /// ```
    pub fn blocking_next(&mut self) -> Option<(JobId, JobResult<T, E>)> {
        while !self.pending.is_empty() {
            let mut state = self.inbox.lock();
            while state.keys.is_empty() {
                state = self
                    .inbox
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let key = state.keys.pop_front().expect("checked non-empty");
            drop(state);
            if let Some(finished) = self.take(key) {
                return Some(finished);
            }
        }
        None
    }

    fn take(&mut self, key: usize) -> Option<(JobId, JobResult<T, E>)> {
        let handle = self.pending.remove(&key)?;
        let id = handle.id();
        match handle.try_join() {
            Ok(result) => Some((id, result)),
            Err(handle) => {
                // Unreachable by construction (keys arrive after results); keep the handle anyway.
                self.pending.insert(key, handle);
                None
            }
        }
    }
}

impl<T, E> Default for Completions<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

/// Blocks for the next result in completion order ([`blocking_next`](Completions::blocking_next));
/// ends when every handle has come out. For threads; async code calls
/// [`next`](Completions::next).
impl<T, E> Iterator for Completions<T, E> {
    type Item = (JobId, JobResult<T, E>);

    fn next(&mut self) -> Option<Self::Item> {
        self.blocking_next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.pending.len(), Some(self.pending.len()))
    }
}

/// Yields results in completion order; ends when every handle has come out.
///
/// # Cancel safety
///
/// Cancel safe: a result is taken from its handle only when it is returned.
impl<T, E> Stream for Completions<T, E> {
    type Item = (JobId, JobResult<T, E>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.pending.is_empty() {
                return Poll::Ready(None);
            }
            let key = {
                let mut state = this.inbox.lock();
                match state.keys.pop_front() {
                    Some(key) => key,
                    None => {
                        state.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            };
            if let Some(finished) = this.take(key) {
                return Poll::Ready(Some(finished));
            }
        }
    }
}

impl<T, E> fmt::Debug for Completions<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completions")
            .field("pending", &self.pending.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CancellationToken;
    use crate::backend::job_handle;

    #[test]
    fn handles_of_different_pools_with_the_same_id_each_come_out() {
        let pool_token = CancellationToken::new();
        let mut completions = Completions::new();
        let mut completers = Vec::new();
        // Every pool numbers its jobs from 1: three pools, three jobs numbered 1.
        for _ in 0..3 {
            let (handle, completer) = job_handle::<u32, ()>(JobId::new(1), &pool_token);
            completions.push(handle);
            completers.push(completer);
        }
        assert_eq!(completions.len(), 3);
        for (n, completer) in (0..).zip(completers) {
            completer.complete(Ok(n));
        }
        let mut outputs: Vec<u32> = completions
            .map(|(id, result)| {
                assert_eq!(id, JobId::new(1));
                result.expect("output")
            })
            .collect();
        outputs.sort_unstable();
        assert_eq!(outputs, [0, 1, 2]);
    }
}
