//! The cell a job's handle, its completer and its tokens share: the one allocation a
//! handle costs, and the only `unsafe` code of this crate.
//!
//! A cell is four words for a result of up to two words (40 bytes, glibc's 48-byte chunk):
//!
//! - `state`: the reference count, the job token's cancel flag, the slot's lock and tag,
//!   and whether the token has waiters, all in one atomic word;
//! - `class`: the pool's [`CellClass`], shared by every cell of the pool: the pool's token
//!   (every job's token is its child), the waiters of the jobs' tokens, and how to free a
//!   cell without knowing its result's type;
//! - the job's id;
//! - the slot: an untagged union of nothing, the waker of whoever waits for the result,
//!   the inbox of a [`Completions`](crate::Completions), or the result, whose tag is in
//!   `state`.
//!
//! The protocol, which the loom models at the end check:
//!
//! - **References.** Every [`TypedCell`] and [`CellRef`] owns one count. A clone adds one
//!   (relaxed: the clone comes from a live reference); a drop takes one off with release,
//!   and the drop that takes the last one acquires and frees the cell, so every use of the
//!   cell happens before it is freed.
//! - **The slot.** It is read and written only under the lock bit, taken with acquire and
//!   let go with release; the tag changes only under the lock, so whoever holds it knows
//!   the tag, and lets go of the lock and sets the new tag in one `fetch_xor`. A holder that
//!   finds itself the only reference reads the slot without the lock: the last other
//!   holder's release of its count, acquired by the load that saw it gone, orders every
//!   write to the slot before the read.
//! - **Cancel.** The flag is set with `fetch_or`; the registration of a waiter sets the
//!   waited flag with `fetch_or` on the same word while it holds the class's waiter table.
//!   The two read-modify-writes are ordered: a cancel that comes second sees the waited
//!   flag and takes the waiters from the table; a registration that comes second sees the
//!   cancel in the flag its caller reads next.
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::Waker;

use crossbeam_utils::{Backoff, CachePadded};

use crate::cancel::Waiters;
use crate::completions::Inbox;
use crate::sync::atomic::{AtomicUsize, Ordering, fence};
use crate::sync::{Mutex, UnsafeCell, lock, spin_loop};
use crate::{CancellationToken, JobId, JobResult};

/// The job's token was cancelled (alone: its parent's cancel is the parent's flag).
const CANCELLED: usize = 1;
/// Someone holds the slot.
const LOCKED: usize = 1 << 1;
/// The job's token had waiters registered: its cancel looks for them in the class's table.
const WAITED: usize = 1 << 2;
const TAG_SHIFT: u32 = 3;
const TAG_MASK: usize = 0b111 << TAG_SHIFT;
/// One reference, in the bits above the flags and the tag.
const REF_ONE: usize = 1 << 6;
/// Past this many references the count aborts the process, as `Arc`'s does: leaked clones
/// by the billion, not a use this crate has.
const MAX_REFS: usize = (isize::MAX as usize) / REF_ONE;

/// What the slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    /// Nothing: nobody waits yet.
    Pending = 0,
    /// The waker of the task awaiting the handle, or of the thread blocked in `join`.
    Waiting = 1,
    /// The inbox of a [`Completions`](crate::Completions) holding the handle.
    Notify = 2,
    /// The result.
    Done = 3,
    /// Nothing: the result was taken.
    Taken = 4,
}

impl Tag {
    fn of(state: usize) -> Tag {
        match (state & TAG_MASK) >> TAG_SHIFT {
            0 => Tag::Pending,
            1 => Tag::Waiting,
            2 => Tag::Notify,
            3 => Tag::Done,
            _ => Tag::Taken,
        }
    }

    fn bits(self) -> usize {
        (self as usize) << TAG_SHIFT
    }

    fn is_pending(self) -> bool {
        matches!(self, Tag::Pending | Tag::Waiting | Tag::Notify)
    }
}

/// The part of a cell that does not depend on the result's type: what a [`CellRef`]
/// points to. First in the cell, which is `repr(C)`, so a pointer to the cell is one to it.
#[repr(C)]
struct Header {
    state: AtomicUsize,
    /// From `Arc::into_raw`: the cell owns one count of its class.
    class: NonNull<CachePadded<CellClass>>,
}

/// One job's cell: see the module docs.
#[repr(C)]
struct Cell<T, E> {
    header: Header,
    id: JobId,
    slot: UnsafeCell<Slot<T, E>>,
}

/// What the slot holds; which field is live is the tag in the cell's state.
union Slot<T, E> {
    empty: (),
    waker: ManuallyDrop<Waker>,
    inbox: ManuallyDrop<Arc<Inbox>>,
    result: ManuallyDrop<JobResult<T, E>>,
}

/// Whoever the slot held to hear of the result, taken out of it: woken, or dropped, once
/// the lock is let go (a waker is its executor's code, which may touch this job again).
pub(crate) enum Listener {
    Waker(Waker),
    Inbox(Arc<Inbox>),
}

/// What the cells of one pool share: the pool's token, the waiters of their tokens, and how
/// to free one. Padded, so that the reference count each new cell takes sits on a line of
/// its own, away from the parent token the workers read on every job.
struct CellClass {
    parent: CancellationToken,
    /// The waiters of the cells' tokens, by cell address: most jobs' tokens are never
    /// waited on, so a cell keeps no word for them.
    waiters: Mutex<HashMap<usize, Box<Waiters>>>,
    /// Drops and frees a cell of this class.
    release: unsafe fn(NonNull<Header>),
}

/// Makes cells holding a `JobResult<T, E>`, all children of one pool's token.
pub(crate) struct CellFactory<T, E> {
    class: Arc<CachePadded<CellClass>>,
    _result: PhantomData<fn() -> (T, E)>,
}

/// A counted reference to a cell whose result type is known: the handle's and the
/// completer's.
pub(crate) struct TypedCell<T, E> {
    raw: CellRef,
    /// The result lives in the cell, not here: pinning a handle pins no result.
    _result: PhantomData<fn() -> (T, E)>,
}

/// A counted reference to a cell whose result type is not known: the job's token.
pub(crate) struct CellRef {
    header: NonNull<Header>,
}

// SAFETY: a cell's result is only moved in and out under the slot's lock, or by the only
// reference left, so sharing or sending a reference needs only `T` and `E` to be `Send`;
// the rest of the cell is atomics and the class, which is `Send + Sync`.
unsafe impl<T: Send, E: Send> Send for TypedCell<T, E> {}
// SAFETY: as above.
unsafe impl<T: Send, E: Send> Sync for TypedCell<T, E> {}
// SAFETY: a `CellRef` touches only the state word and the class (a `CellClass` is
// `Send + Sync`); its last drop frees the cell with the `release` of its class, which was
// made for a cell whose `T` and `E` are `Send` (see `CellFactory`).
unsafe impl Send for CellRef {}
// SAFETY: as above.
unsafe impl Sync for CellRef {}

impl<T: Send + 'static, E: Send + 'static> CellFactory<T, E> {
    /// Cells whose tokens are children of `parent`.
    pub(crate) fn new(parent: &CancellationToken) -> Self {
        CellFactory {
            class: Arc::new(CachePadded::new(CellClass {
                parent: parent.clone(),
                waiters: Mutex::new(HashMap::new()),
                release: release::<T, E>,
            })),
            _result: PhantomData,
        }
    }

    /// A new cell for job `id`, and its two references: the handle's and the completer's.
    pub(crate) fn make(&self, id: JobId) -> (TypedCell<T, E>, TypedCell<T, E>) {
        let class = Arc::into_raw(Arc::clone(&self.class));
        let cell = Box::new(Cell::<T, E> {
            header: Header {
                state: AtomicUsize::new((2 * REF_ONE) | Tag::Pending.bits()),
                // SAFETY: `Arc::into_raw` never returns null.
                class: unsafe { NonNull::new_unchecked(class.cast_mut()) },
            },
            id,
            slot: UnsafeCell::new(Slot { empty: () }),
        });
        let header = NonNull::from(Box::leak(cell)).cast::<Header>();
        let typed = || TypedCell {
            raw: CellRef { header },
            _result: PhantomData,
        };
        (typed(), typed())
    }
}

// For the stress test, which loom builds leave out.
#[cfg(all(test, not(brigade_loom)))]
impl<T, E> CellFactory<T, E> {
    /// How many cells of this factory are not freed yet.
    pub(crate) fn cells_alive(&self) -> usize {
        Arc::strong_count(&self.class) - 1
    }
}

impl<T, E> Clone for CellFactory<T, E> {
    fn clone(&self) -> Self {
        CellFactory {
            class: Arc::clone(&self.class),
            _result: PhantomData,
        }
    }
}

/// Drops the slot's contents and the cell, and lets go of the cell's count of its class.
///
/// # Safety
///
/// `header` heads a `Cell<T, E>` made by `CellFactory::<T, E>::make`, and no reference to it
/// is left.
unsafe fn release<T, E>(header: NonNull<Header>) {
    // SAFETY: per this function's contract, the cell came from a `Box<Cell<T, E>>` and
    // nothing else can reach it.
    let cell = unsafe { Box::from_raw(header.cast::<Cell<T, E>>().as_ptr()) };
    let state = cell.header.state.load(Ordering::Relaxed);
    let address = header.as_ptr().addr();
    cell.slot.with_mut(|slot| {
        // SAFETY: the tag says which field is live; nobody else holds the cell.
        unsafe {
            match Tag::of(state) {
                Tag::Waiting => ManuallyDrop::drop(&mut (*slot).waker),
                Tag::Notify => ManuallyDrop::drop(&mut (*slot).inbox),
                Tag::Done => ManuallyDrop::drop(&mut (*slot).result),
                Tag::Pending | Tag::Taken => {}
            }
        }
    });
    // SAFETY: the cell owned one count of its class, from `Arc::into_raw`.
    let class = unsafe { Arc::from_raw(cell.header.class.as_ptr().cast_const()) };
    if state & WAITED != 0 {
        // Registrations end before their token does; a table entry left would belong to
        // the next cell at this address.
        let removed = lock(&class.waiters).remove(&address);
        drop(removed);
    }
    drop(cell);
    drop(class);
}

impl CellRef {
    fn header(&self) -> &Header {
        // SAFETY: this reference owns a count, so the cell is alive.
        unsafe { self.header.as_ref() }
    }

    fn class(&self) -> &CellClass {
        // SAFETY: the cell owns a count of its class, so the class outlives the cell, and
        // the cell outlives `self`.
        unsafe { self.header().class.as_ref() }
    }

    /// What tells this cell apart from every other live one: its address.
    pub(crate) fn address(&self) -> usize {
        self.header.as_ptr().addr()
    }

    /// Whether the job's token was cancelled alone, its parent aside.
    #[inline]
    pub(crate) fn is_cancelled_alone(&self) -> bool {
        self.header().state.load(Ordering::Acquire) & CANCELLED != 0
    }

    /// Whether the job's token was cancelled, alone or with the pool's.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.is_cancelled_alone() || self.parent().is_cancelled()
    }

    /// The pool's token, the parent of the job's.
    pub(crate) fn parent(&self) -> &CancellationToken {
        &self.class().parent
    }

    /// Whether the result is in (or was taken), with acquire ordering.
    pub(crate) fn is_finished(&self) -> bool {
        !Tag::of(self.header().state.load(Ordering::Acquire)).is_pending()
    }

    /// Sets the cancel flag; returns the token's waiters the first time, `None` when it
    /// was cancelled already or nobody waits.
    pub(crate) fn cancel(&self) -> Option<Option<Box<Waiters>>> {
        let before = self.header().state.fetch_or(CANCELLED, Ordering::AcqRel);
        if before & CANCELLED != 0 {
            return None;
        }
        if before & WAITED == 0 {
            return Some(None);
        }
        Some(lock(&self.class().waiters).remove(&self.address()))
    }

    /// Runs `f` on the token's waiters, with the class's table locked. Marks the cell as
    /// waited on first, so that a cancel from now on looks in the table.
    pub(crate) fn with_waiters(&self, f: &mut dyn FnMut(&mut Option<Box<Waiters>>)) {
        let mut table = lock(&self.class().waiters);
        self.header().state.fetch_or(WAITED, Ordering::AcqRel);
        let address = self.address();
        let mut waiters = table.remove(&address);
        f(&mut waiters);
        if let Some(waiters) = waiters {
            table.insert(address, waiters);
        }
    }

    /// Whether this is the only reference left, with acquire ordering: see the module docs.
    fn is_alone(&self) -> bool {
        self.header().state.load(Ordering::Acquire) & !(REF_ONE - 1) == REF_ONE
    }
}

impl Clone for CellRef {
    fn clone(&self) -> Self {
        let before = self.header().state.fetch_add(REF_ONE, Ordering::Relaxed);
        if before / REF_ONE > MAX_REFS {
            std::process::abort();
        }
        CellRef {
            header: self.header,
        }
    }
}

impl Drop for CellRef {
    fn drop(&mut self) {
        let before = self.header().state.fetch_sub(REF_ONE, Ordering::Release);
        if before & !(REF_ONE - 1) != REF_ONE {
            return;
        }
        fence(Ordering::Acquire);
        let release = self.class().release;
        // SAFETY: that was the last count, and the class's `release` is for this cell's
        // type (`CellFactory` made both).
        unsafe { release(self.header) }
    }
}

impl fmt::Debug for CellRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CellRef")
            .field("cancelled", &self.is_cancelled_alone())
            .finish_non_exhaustive()
    }
}

impl<T, E> TypedCell<T, E> {
    fn cell(&self) -> &Cell<T, E> {
        // SAFETY: a `TypedCell<T, E>` is only made for a `Cell<T, E>` (`CellFactory::make`),
        // and it owns a count, so the cell is alive.
        unsafe { self.raw.header.cast::<Cell<T, E>>().as_ref() }
    }

    /// The erased reference, for the job's token.
    pub(crate) fn erased(&self) -> &CellRef {
        &self.raw
    }

    /// The job's id.
    pub(crate) fn id(&self) -> JobId {
        self.cell().id
    }

    /// Takes the slot's lock, spinning briefly: every critical section is a few moves.
    pub(crate) fn lock(&self) -> SlotGuard<'_, T, E> {
        let cell = self.cell();
        let backoff = Backoff::new();
        loop {
            let before = cell.header.state.fetch_or(LOCKED, Ordering::Acquire);
            if before & LOCKED == 0 {
                let tag = Tag::of(before);
                return SlotGuard {
                    cell,
                    found: tag,
                    tag,
                };
            }
            spin_loop(&backoff);
        }
    }

    /// The result, taken without the lock, if this is the only reference left (the
    /// completer delivered and let go, and no token of the job is held); `Err(self)`
    /// otherwise.
    ///
    /// # Panics
    ///
    /// If the result was taken already: the handle was awaited to its result, then joined.
    pub(crate) fn try_take_alone(self) -> Result<JobResult<T, E>, Self> {
        if !self.raw.is_alone() {
            return Err(self);
        }
        let cell = self.cell();
        match Tag::of(cell.header.state.load(Ordering::Relaxed)) {
            Tag::Done => {}
            Tag::Taken => panic!("JobHandle used after it returned its result"),
            Tag::Pending | Tag::Waiting | Tag::Notify => {
                unreachable!("a completer delivers before it lets go of its cell")
            }
        }
        // Nobody else reads the state any more, but the drop does: it must not drop the
        // result taken here.
        cell.header
            .state
            .fetch_xor(Tag::Done.bits() ^ Tag::Taken.bits(), Ordering::Relaxed);
        // SAFETY: the tag was `Done`, so the result is live; this is the only reference,
        // and the tag now says `Taken`, so nothing reads the result again.
        let result = cell
            .slot
            .with_mut(|slot| unsafe { ManuallyDrop::take(&mut (*slot).result) });
        Ok(result)
    }
}

/// The slot, locked. Dropping it lets go of the lock and publishes the tag.
pub(crate) struct SlotGuard<'a, T, E> {
    cell: &'a Cell<T, E>,
    /// The tag when the lock was taken.
    found: Tag,
    /// The tag now.
    tag: Tag,
}

impl<T, E> SlotGuard<'_, T, E> {
    /// Whether the result has not come yet.
    pub(crate) fn is_pending(&self) -> bool {
        self.tag.is_pending()
    }

    /// Takes out whoever waits, and leaves the slot empty.
    fn take_listener(&mut self) -> Option<Listener> {
        let tag = self.tag;
        let listener = self.cell.slot.with_mut(|slot| {
            // SAFETY: the tag says which field is live, and the lock is held.
            unsafe {
                match tag {
                    Tag::Waiting => Some(Listener::Waker(ManuallyDrop::take(&mut (*slot).waker))),
                    Tag::Notify => Some(Listener::Inbox(ManuallyDrop::take(&mut (*slot).inbox))),
                    Tag::Pending | Tag::Done | Tag::Taken => None,
                }
            }
        });
        if listener.is_some() {
            self.tag = Tag::Pending;
        }
        listener
    }

    /// Has `waker` woken when the result comes, replacing whoever was to hear of it; returns
    /// what it replaced. Does nothing once the result is in.
    #[must_use]
    pub(crate) fn wake_on_delivery(&mut self, waker: &Waker) -> Option<Listener> {
        match self.tag {
            Tag::Waiting => {
                let same = self.cell.slot.with(|slot| {
                    // SAFETY: the tag says the waker is live; the lock is held.
                    unsafe { (*slot).waker.will_wake(waker) }
                });
                if same {
                    return None;
                }
            }
            Tag::Pending | Tag::Notify => {}
            Tag::Done | Tag::Taken => return None,
        }
        // Cloned before anything changes: a clone that panics leaves the slot as it was.
        let waker = waker.clone();
        let replaced = self.take_listener();
        self.put_waker(waker);
        replaced
    }

    fn put_waker(&mut self, waker: Waker) {
        debug_assert_eq!(self.tag, Tag::Pending);
        self.cell.slot.with_mut(|slot| {
            // SAFETY: the slot is empty (`Pending`) and locked.
            unsafe { (*slot).waker = ManuallyDrop::new(waker) }
        });
        self.tag = Tag::Waiting;
    }

    /// Has `inbox` hear of the result, replacing whoever was to; returns what it replaced.
    /// Returns `Err(inbox)` once the result is in.
    pub(crate) fn notify(&mut self, inbox: Arc<Inbox>) -> Result<Option<Listener>, Arc<Inbox>> {
        if !self.tag.is_pending() {
            return Err(inbox);
        }
        let replaced = self.take_listener();
        self.cell.slot.with_mut(|slot| {
            // SAFETY: the slot is empty now, and locked.
            unsafe { (*slot).inbox = ManuallyDrop::new(inbox) }
        });
        self.tag = Tag::Notify;
        Ok(replaced)
    }

    /// Forgets the waker of a wait that gave up; returns it, to drop after the lock.
    #[must_use]
    pub(crate) fn forget_waker(&mut self) -> Option<Listener> {
        match self.tag {
            Tag::Waiting => self.take_listener(),
            _ => None,
        }
    }

    /// Puts the result in, unless one is in already; returns whoever is to hear of it.
    pub(crate) fn deliver(&mut self, result: JobResult<T, E>) -> Option<Listener> {
        if !self.tag.is_pending() {
            return None;
        }
        let listener = self.take_listener();
        self.cell.slot.with_mut(|slot| {
            // SAFETY: the slot is empty now, and locked.
            unsafe { (*slot).result = ManuallyDrop::new(result) }
        });
        self.tag = Tag::Done;
        listener
    }

    /// The result if it is there, `None` while the job runs.
    ///
    /// # Panics
    ///
    /// If it was taken already: the handle was awaited to its result, then joined.
    pub(crate) fn take_done(&mut self) -> Option<JobResult<T, E>> {
        match self.tag {
            Tag::Done => {
                let result = self.cell.slot.with_mut(|slot| {
                    // SAFETY: the tag says the result is live, and the lock is held; the tag
                    // becomes `Taken`, so nothing reads it again.
                    unsafe { ManuallyDrop::take(&mut (*slot).result) }
                });
                self.tag = Tag::Taken;
                Some(result)
            }
            Tag::Taken => panic!("JobHandle used after it returned its result"),
            Tag::Pending | Tag::Waiting | Tag::Notify => None,
        }
    }
}

impl<T, E> Drop for SlotGuard<'_, T, E> {
    fn drop(&mut self) {
        // Only the lock's holder changes the tag, so the xor flips exactly the old tag's
        // bits to the new one's, and the lock bit off.
        let flip = LOCKED | (self.found.bits() ^ self.tag.bits());
        self.cell.header.state.fetch_xor(flip, Ordering::Release);
    }
}

#[cfg(all(test, not(brigade_loom)))]
mod tests {
    use super::*;

    /// What the memory row counts: a cell for a word-sized result fills a 48-byte chunk.
    #[test]
    fn a_cell_for_a_word_sized_result_is_four_words() {
        assert_eq!(std::mem::size_of::<Cell<u64, std::io::Error>>(), 40);
        assert_eq!(std::mem::size_of::<Cell<(), String>>(), 40);
    }

    #[test]
    fn the_last_reference_frees_the_cell_and_its_contents() {
        let parent = CancellationToken::new();
        let factory = CellFactory::<String, ()>::new(&parent);
        let (first, second) = factory.make(JobId::new(1));
        let token = first.erased().clone();
        second.lock().deliver(Ok("result".to_owned()));
        drop(first);
        drop(second);
        assert!(token.is_finished());
        drop(token);
        assert_eq!(Arc::strong_count(&factory.class), 1);
    }

    #[test]
    fn a_cancel_hands_over_the_waiters_once() {
        let factory = CellFactory::<(), ()>::new(&CancellationToken::new());
        let (cell, _completer) = factory.make(JobId::new(1));
        cell.erased().with_waiters(&mut |waiters| {
            waiters
                .get_or_insert_with(Box::default)
                .push((7, Waker::noop().clone()));
        });
        let taken = cell.erased().cancel().expect("the first cancel");
        assert_eq!(taken.map(|waiters| waiters.len()), Some(1));
        assert!(cell.erased().cancel().is_none());
        assert!(cell.erased().is_cancelled_alone());
    }

    #[test]
    fn a_result_taken_alone_leaves_nothing_to_drop_twice() {
        let factory = CellFactory::<Vec<u8>, ()>::new(&CancellationToken::new());
        let (handle, completer) = factory.make(JobId::new(1));
        completer.lock().deliver(Ok(vec![1, 2, 3]));
        drop(completer);
        let result = handle.try_take_alone().ok().expect("alone");
        assert_eq!(result, Ok(vec![1, 2, 3]));
    }
}

/// Models: a result is dropped once, by whichever reference goes last; a delivery racing a
/// `Completions`' notice sends the cell's key exactly once; a cancel racing a registration
/// on the job's token either hands the registration to the canceller or is seen by the
/// registration's caller.
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use std::sync::Arc;

    use crate::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A result that counts its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn loom_a_result_is_dropped_once_by_the_last_reference() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let factory = CellFactory::<Counted, ()>::new(&CancellationToken::new());
            let (handle, completer) = factory.make(JobId::new(1));
            let token = handle.erased().clone();
            let result = Counted(Arc::clone(&drops));
            let worker = loom::thread::spawn(move || {
                let listener = completer.lock().deliver(Ok(result));
                assert!(listener.is_none());
                drop(completer);
            });
            let other = loom::thread::spawn(move || drop(token));
            drop(handle);
            worker.join().unwrap();
            other.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            assert_eq!(Arc::strong_count(&factory.class), 1);
        });
    }

    #[test]
    fn loom_a_join_alone_or_locked_takes_the_result_once() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let factory = CellFactory::<Counted, ()>::new(&CancellationToken::new());
            let (handle, completer) = factory.make(JobId::new(1));
            let result = Counted(Arc::clone(&drops));
            let worker = loom::thread::spawn(move || {
                let _ = completer.lock().deliver(Ok(result));
                drop(completer);
            });
            let mut handle = handle;
            let taken = loop {
                match handle.try_take_alone() {
                    Ok(result) => break result,
                    Err(shared) => handle = shared,
                }
                if let Some(result) = handle.lock().take_done() {
                    break result;
                }
                loom::thread::yield_now();
            };
            worker.join().unwrap();
            drop(taken);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn loom_a_cancel_racing_a_registration_is_heard() {
        loom::model(|| {
            let factory = CellFactory::<(), ()>::new(&CancellationToken::new());
            let (handle, completer) = factory.make(JobId::new(1));
            let canceller = loom::thread::spawn(move || handle.erased().cancel());
            completer.erased().with_waiters(&mut |waiters| {
                waiters
                    .get_or_insert_with(Box::default)
                    .push((1, std::task::Waker::noop().clone()));
            });
            let seen_by_registrant = completer.erased().is_cancelled_alone();
            let handed_over = canceller
                .join()
                .unwrap()
                .expect("the only cancel")
                .is_some();
            assert!(seen_by_registrant || handed_over);
        });
    }
}
