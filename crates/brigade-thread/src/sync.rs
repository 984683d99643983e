//! The synchronisation primitives of the protocols that loom models: loom's under
//! `cfg(brigade_loom)`, std's otherwise.

#[cfg(brigade_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard, atomic};
#[cfg(not(brigade_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, atomic};

/// Locks `mutex`, ignoring poison: every critical section in this crate leaves its data
/// valid at each point where user code could panic (none runs under these locks).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// As [`lock`], for the std mutexes outside the modelled protocols.
pub(crate) fn lock_std<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
