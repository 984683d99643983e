use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::job_cell::CellRef;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::thread_waker::current_thread_waker;

/// A cooperative cancellation signal, shared by a pool, its jobs and their handles.
///
/// Cancelling a token cancels every token made from it with
/// [`child_token`](Self::child_token); a pool cancels its own token at a shutdown deadline,
/// and each job's token is a child of it. Jobs notice cancellation by asking
/// [`is_cancelled`](Self::is_cancelled), by blocking in [`wait_timeout`](Self::wait_timeout)
/// instead of sleeping, or by awaiting [`cancelled`](Self::cancelled).
///
/// The token needs no runtime: the same type serves threads and async tasks.
///
/// # Examples
///
/// ```
/// use brigade_core::CancellationToken;
///
/// let pool = CancellationToken::new();
/// let job = pool.child_token();
/// assert!(!job.is_cancelled());
/// pool.cancel();
/// assert!(job.is_cancelled());
/// ```
#[derive(Clone)]
pub struct CancellationToken {
    node: Node,
}

/// What a token stands on: a node of its own, or a job's handle cell, which is its job's
/// token without a second allocation.
#[derive(Clone)]
enum Node {
    Plain(Arc<dyn TokenNode>),
    Job(CellRef),
}

/// A plain token's node: its state and its list of waiters (a pool's token on a line of
/// its own is one too).
trait TokenNode: Send + Sync {
    fn token_state(&self) -> &TokenState;

    /// Runs `f` on the node's waiters, locked.
    fn with_waiters(&self, f: &mut dyn FnMut(&mut Option<Box<Waiters>>));
}

/// The flags and the parent behind a [`CancellationToken`]: what the hot path reads.
struct TokenState {
    cancelled: AtomicBool,
    parent: Option<CancellationToken>,
}

/// Who waits for a token's cancel (`cancelled` futures, `wait_timeout` threads), each under
/// its registration's key. Boxed when the first one comes: most jobs' tokens are never
/// waited on, so an empty list costs them one word.
pub(crate) type Waiters = Vec<(u64, Waker)>;

static NEXT_WAITER_KEY: AtomicU64 = AtomicU64::new(0);

/// A key no other registration on any token uses.
pub(crate) fn waiter_key() -> u64 {
    NEXT_WAITER_KEY.fetch_add(1, Ordering::Relaxed)
}

/// A token that is nothing else: its state and its own lock for the waiters.
struct PlainToken {
    state: TokenState,
    waiters: Mutex<Option<Box<Waiters>>>,
}

impl PlainToken {
    fn new(parent: Option<CancellationToken>) -> Self {
        PlainToken {
            state: TokenState::new(parent),
            waiters: Mutex::new(None),
        }
    }
}

impl TokenNode for PlainToken {
    fn token_state(&self) -> &TokenState {
        &self.state
    }

    fn with_waiters(&self, f: &mut dyn FnMut(&mut Option<Box<Waiters>>)) {
        // Wakers never panic while the lock is held, so a poisoned lock still holds a
        // valid list.
        f(&mut self.waiters.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl TokenNode for CachePadded<PlainToken> {
    fn token_state(&self) -> &TokenState {
        &self.state
    }

    fn with_waiters(&self, f: &mut dyn FnMut(&mut Option<Box<Waiters>>)) {
        (**self).with_waiters(f);
    }
}

/// Cancels a plain token and wakes whoever waits on it. Cancelling twice does nothing.
fn cancel_plain(node: &dyn TokenNode) {
    if !node.token_state().cancelled.swap(true, Ordering::AcqRel) {
        let mut waiters = None;
        node.with_waiters(&mut |list| waiters = list.take());
        wake_all(waiters);
    }
}

/// Cancels the token of the job whose cell `cell` is, and wakes whoever waits on it.
/// Cancelling twice does nothing.
pub(crate) fn cancel_job(cell: &CellRef) {
    if let Some(waiters) = cell.cancel() {
        wake_all(waiters);
    }
}

/// Wakes the waiters a cancel took.
fn wake_all(waiters: Option<Box<Waiters>>) {
    for (_, waker) in waiters.into_iter().flat_map(|waiters| *waiters) {
        // A waker is its executor's code. One that panics must neither leave the waiters
        // after it asleep nor unwind through the canceller: a shutdown cancels the pool's
        // token with unstarted jobs still to hand back.
        if catch_unwind(AssertUnwindSafe(|| waker.wake())).is_err() {
            tracing::error!("a waker panicked as a cancellation token woke it");
        }
    }
}

/// Registers `waker` on `token` alone under `key`, replacing an earlier registration with the
/// same key.
///
/// The waker is cloned before the token's lock and the one it replaces dropped after it: a
/// waker's clone and drop are its executor's code, which may touch the same token again.
fn register(token: &CancellationToken, key: u64, waker: &Waker) {
    let mut carried = Some(waker.clone());
    token.with_waiters(&mut |waiters| {
        let Some(new) = carried.take() else { return };
        let waiters = waiters.get_or_insert_with(Box::default);
        match waiters.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => carried = Some(std::mem::replace(existing, new)),
            None => waiters.push((key, new)),
        }
    });
    drop(carried);
}

/// Removes the registration under `key`, dropping its waker after the token's lock (see
/// [`register`]).
fn deregister(token: &CancellationToken, key: u64) {
    let mut removed = None;
    token.with_waiters(&mut |waiters| {
        let Some(list) = waiters.as_mut() else { return };
        if let Some(at) = list.iter().position(|(k, _)| *k == key) {
            removed = Some(list.swap_remove(at));
        }
        if list.is_empty() {
            *waiters = None;
        }
    });
    drop(removed);
}

impl TokenState {
    fn new(parent: Option<CancellationToken>) -> Self {
        TokenState {
            cancelled: AtomicBool::new(false),
            parent,
        }
    }

    #[inline]
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
            || self
                .parent
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
    }
}

impl CancellationToken {
    /// Returns a new token, not cancelled, with no parent.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = brigade_core::CancellationToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::plain(Arc::new(PlainToken::new(None)))
    }

    fn plain(node: Arc<dyn TokenNode>) -> Self {
        CancellationToken {
            node: Node::Plain(node),
        }
    }

    /// The token of the job whose handle cell `cell` is.
    pub(crate) fn of_job(cell: CellRef) -> Self {
        CancellationToken {
            node: Node::Job(cell),
        }
    }

    /// Returns a token that is cancelled when this one is, and can also be cancelled alone.
    ///
    /// # Examples
    ///
    /// ```
    /// let parent = brigade_core::CancellationToken::new();
    /// let child = parent.child_token();
    /// child.cancel();
    /// assert!(child.is_cancelled());
    /// assert!(!parent.is_cancelled());
    /// ```
    #[must_use]
    pub fn child_token(&self) -> Self {
        Self::plain(Arc::new(PlainToken::new(Some(self.clone()))))
    }

    /// Cancels this token and, through them, all its children. Cancelling twice does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = brigade_core::CancellationToken::new();
    /// token.cancel();
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        match &self.node {
            Node::Plain(node) => cancel_plain(&**node),
            Node::Job(cell) => cancel_job(cell),
        }
    }

    /// Reports whether this token or one of its ancestors was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = brigade_core::CancellationToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        match &self.node {
            Node::Plain(node) => node.token_state().is_cancelled(),
            Node::Job(cell) => cell.is_cancelled(),
        }
    }

    /// Blocks the current thread until the token is cancelled or `timeout` passes, and reports
    /// whether it was cancelled. Use it in a job in place of `thread::sleep`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let token = brigade_core::CancellationToken::new();
    /// assert!(!token.wait_timeout(Duration::from_millis(1)));
    /// token.cancel();
    /// assert!(token.wait_timeout(Duration::from_secs(60)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let waker = current_thread_waker();
        let mut registration = Registration::new(self);
        loop {
            if self.is_cancelled() {
                return true;
            }
            registration.register(&waker);
            if self.is_cancelled() {
                return true;
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }

    /// Waits until the token is cancelled.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future removes its registration and loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::future::Future;
    /// # use std::pin::pin;
    /// # use std::task::{Context, Poll, Waker};
    /// let token = brigade_core::CancellationToken::new();
    /// token.cancel();
    /// let mut cancelled = pin!(token.cancelled());
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert_eq!(cancelled.as_mut().poll(&mut cx), Poll::Ready(()));
    /// ```
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            registration: Registration::new(self),
        }
    }

    fn parent(&self) -> Option<&CancellationToken> {
        match &self.node {
            Node::Plain(node) => node.token_state().parent.as_ref(),
            Node::Job(cell) => Some(cell.parent()),
        }
    }

    /// Runs `f` on the token's waiters, locked.
    fn with_waiters(&self, f: &mut dyn FnMut(&mut Option<Box<Waiters>>)) {
        match &self.node {
            Node::Plain(node) => node.with_waiters(f),
            Node::Job(cell) => cell.with_waiters(f),
        }
    }

    /// Registers `waker` under `key` on this token alone, replacing an earlier
    /// registration under `key`: it is woken when this token is cancelled, not when an
    /// ancestor is (a pool's cancel of all its jobs is heard otherwise). Look at
    /// [`is_cancelled`](Self::is_cancelled) after registering: a cancel before it woke
    /// nobody.
    pub(crate) fn register_alone(&self, key: u64, waker: &Waker) {
        register(self, key, waker);
    }

    /// Removes the registration under `key` from this token, if there is one.
    pub(crate) fn deregister_alone(&self, key: u64) {
        deregister(self, key);
    }
}

impl Default for CancellationToken {
    fn default() -> Self {
        Self::new()
    }
}

/// A token whose holder knows it stands on a plain node, on a cache line of its own: it
/// reads the token's state from the node directly, without the virtual call a
/// [`CancellationToken`] makes. A pool's own token and its workers' seats are read on every
/// job.
///
/// The line of its own serves a pool's token, which every worker reads on each job while
/// its reference count is written by whoever clones it (a worker's seat, a run's context):
/// its state sits away from that count, so the readers and the writers do not steal one
/// line from each other.
#[derive(Clone)]
pub(crate) struct KnownToken {
    node: Arc<CachePadded<PlainToken>>,
    /// The same node, as the token the holder hands out.
    token: CancellationToken,
}

impl KnownToken {
    /// A token with no parent.
    pub(crate) fn root() -> Self {
        Self::on(None)
    }

    /// A child of `parent`: cancelled when `parent` is, and alone.
    pub(crate) fn child_of(parent: &CancellationToken) -> Self {
        Self::on(Some(parent.clone()))
    }

    fn on(parent: Option<CancellationToken>) -> Self {
        let node = Arc::new(CachePadded::new(PlainToken::new(parent)));
        let token = CancellationToken::plain(node.clone());
        KnownToken { node, token }
    }

    /// The token, for whoever is not to know what it stands on.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether the token is cancelled, alone or through an ancestor.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.node.state.is_cancelled()
    }

    /// Whether the token was cancelled alone, its ancestors aside.
    #[inline]
    pub(crate) fn is_cancelled_alone(&self) -> bool {
        self.node.state.cancelled.load(Ordering::Acquire)
    }
}

impl fmt::Debug for KnownToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.token.fmt(f)
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("is_cancelled", &self.is_cancelled())
            .finish()
    }
}

/// A waker registered on a token and each of its ancestors, removed again on drop.
struct Registration<'a> {
    token: &'a CancellationToken,
    key: Option<u64>,
}

impl<'a> Registration<'a> {
    fn new(token: &'a CancellationToken) -> Self {
        Registration { token, key: None }
    }

    fn register(&mut self, waker: &Waker) {
        let key = *self.key.get_or_insert_with(waiter_key);
        let mut token = Some(self.token);
        while let Some(current) = token {
            register(current, key, waker);
            token = current.parent();
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut token = Some(self.token);
        while let Some(current) = token {
            deregister(current, key);
            token = current.parent();
        }
    }
}

/// The future returned by [`CancellationToken::cancelled`].
#[must_use = "futures do nothing unless polled"]
pub struct Cancelled<'a> {
    registration: Registration<'a>,
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.registration.token.is_cancelled() {
            return Poll::Ready(());
        }
        this.registration.register(cx.waker());
        // A cancel between the check and the registration found no waker: look again.
        if this.registration.token.is_cancelled() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl fmt::Debug for Cancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled")
            .field("token", self.registration.token)
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn cancelling_a_parent_wakes_a_thread_waiting_on_a_child() {
        let parent = CancellationToken::new();
        let child = parent.child_token();
        let waiter = thread::spawn(move || child.wait_timeout(Duration::from_secs(60)));
        thread::sleep(Duration::from_millis(20));
        parent.cancel();
        assert!(waiter.join().unwrap());
    }

    /// A waker whose drop cancels the token it waited on: dropped under the token's lock,
    /// the cancel would take that lock again on the same thread.
    pub(crate) struct CancelsOnDrop(pub(crate) CancellationToken);

    impl std::task::Wake for CancelsOnDrop {
        fn wake(self: Arc<Self>) {}
    }

    impl Drop for CancelsOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }

    #[test]
    fn a_replaced_waker_is_dropped_outside_the_token_lock() {
        let (finished_tx, finished_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let parent = CancellationToken::new();
            let child = parent.child_token();
            let mut cancelled = std::pin::pin!(child.cancelled());
            let cancels = Waker::from(Arc::new(CancelsOnDrop(parent.clone())));
            let pending = cancelled.as_mut().poll(&mut Context::from_waker(&cancels));
            assert!(pending.is_pending());
            drop(cancels);
            // Replaces both registrations: the last clone goes with the parent's, and its
            // drop cancels the parent.
            let _ = cancelled
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()));
            finished_tx.send(parent.is_cancelled()).unwrap();
        });
        let cancelled = finished_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the second poll returned (no lock taken twice)");
        assert!(cancelled);
    }

    /// A waker whose wake panics (its executor's bug).
    struct PanicsOnWake;

    impl std::task::Wake for PanicsOnWake {
        fn wake(self: Arc<Self>) {
            panic!("the executor's wake panicked");
        }
    }

    #[test]
    fn a_panicking_waker_neither_escapes_the_cancel_nor_keeps_the_others_asleep() {
        let token = CancellationToken::new();
        let mut first = std::pin::pin!(token.cancelled());
        let panics = Waker::from(Arc::new(PanicsOnWake));
        assert!(
            first
                .as_mut()
                .poll(&mut Context::from_waker(&panics))
                .is_pending()
        );
        let waiter = {
            let token = token.clone();
            thread::spawn(move || token.wait_timeout(Duration::from_secs(60)))
        };
        // The waiting thread registers after the panicking waker.
        thread::sleep(Duration::from_millis(20));
        let cancelled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| token.cancel()));
        assert!(cancelled.is_ok(), "the waker's panic came out of cancel");
        assert!(
            waiter.join().unwrap(),
            "the thread waiting after it was woken"
        );
    }

    #[test]
    fn dropped_registrations_leave_no_waker_behind() {
        let parent = CancellationToken::new();
        let child = parent.child_token();
        for _ in 0..10 {
            assert!(!child.wait_timeout(Duration::from_millis(1)));
        }
        for token in [&parent, &child] {
            token.with_waiters(&mut |waiters| assert!(waiters.is_none()));
        }
    }
}
