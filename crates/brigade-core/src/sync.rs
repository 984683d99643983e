//! The synchronisation primitives of the protocols that loom models: loom's under
//! `cfg(brigade_loom)`, std's otherwise.

#[cfg(brigade_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard, atomic};
#[cfg(brigade_loom)]
pub(crate) use loom::thread::{Thread, current, park};
#[cfg(not(brigade_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, atomic};
#[cfg(not(brigade_loom))]
pub(crate) use std::thread::{Thread, current, park};

/// Locks `mutex`, ignoring poison: the modelled critical sections leave their data valid at
/// every point where a caller's closure could panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
