//! The atomics, locks and `Arc` of the shared limits, swapped for loom's under
//! `cfg(brigade_loom)` so their compare-and-swap loops and locking are model-checked.

#[cfg(brigade_loom)]
pub(crate) use loom::sync::Arc;
#[cfg(all(brigade_loom, feature = "rate-limit"))]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(all(brigade_loom, feature = "weighted"))]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(brigade_loom))]
pub(crate) use std::sync::Arc;
#[cfg(all(not(brigade_loom), feature = "rate-limit"))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(all(not(brigade_loom), feature = "weighted"))]
pub(crate) use std::sync::{Mutex, MutexGuard};
