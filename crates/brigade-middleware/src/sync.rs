//! The atomics and `Arc` of the lock-free policies, swapped for loom's under
//! `cfg(brigade_loom)` so their compare-and-swap loops are model-checked.

#[cfg(brigade_loom)]
pub(crate) use loom::sync::Arc;
#[cfg(brigade_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(brigade_loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(brigade_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
