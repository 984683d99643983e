//! The synchronisation primitives of the protocols that loom models: loom's under
//! `cfg(brigade_loom)`, std's otherwise.

#[cfg(brigade_loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(brigade_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard, atomic};
#[cfg(brigade_loom)]
pub(crate) use loom::thread::{Thread, current, park};
#[cfg(not(brigade_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, atomic};
#[cfg(not(brigade_loom))]
pub(crate) use std::thread::{Thread, current, park};

use crossbeam_utils::Backoff;

/// Locks `mutex`, ignoring poison: the modelled critical sections leave their data valid at
/// every point where a caller's closure could panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One turn of a spin wait: `backoff`'s, or under loom a yield, which lets the model run the
/// thread being waited for.
pub(crate) fn spin_loop(backoff: &Backoff) {
    #[cfg(brigade_loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
    #[cfg(not(brigade_loom))]
    backoff.snooze();
}

/// `std`'s `UnsafeCell` with loom's interface: the data is reached only inside a closure,
/// which loom checks for races.
#[cfg(not(brigade_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(brigade_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(data: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(data))
    }

    /// Runs `f` on a pointer to the data, for reading.
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` on a pointer to the data, for writing.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
