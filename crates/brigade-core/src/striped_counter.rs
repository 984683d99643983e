//! A counter that many threads bump at once, striped so that they do not all write one
//! cache line: each thread adds to its own stripe and a read sums the stripes.
//!
//! A pool's workers each count every job they finish. On one shared line that count is a
//! line the workers pass back and forth once per job; on their own stripes each worker
//! keeps its line.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// Stripes per counter: enough that the threads a small machine runs at once rarely share
/// one, few enough that a read stays cheap (eight loads).
const STRIPES: usize = 8;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct StripedCounter {
    stripes: [CachePadded<AtomicU64>; STRIPES],
}

impl StripedCounter {
    /// Adds one on the calling thread's stripe, with release ordering: a reader that sums
    /// the count sees what the thread did before it counted.
    #[inline]
    pub(crate) fn increment(&self) {
        self.stripes[stripe()].fetch_add(1, Ordering::Release);
    }

    /// The count: every stripe read with acquire ordering. Read while threads count, it is
    /// at most the count at the end of the read and at least the count at its start.
    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.load(Ordering::Acquire))
            .fold(0, u64::wrapping_add)
    }
}

/// The calling thread's stripe. Threads are dealt stripes in turn as they first count, so
/// the workers of a pool, started together, count on different lines.
#[inline]
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_sum_to_the_total() {
        let counter = StripedCounter::default();
        std::thread::scope(|scope| {
            for _ in 0..12 {
                scope.spawn(|| {
                    for _ in 0..1_000 {
                        counter.increment();
                    }
                });
            }
        });
        assert_eq!(counter.sum(), 12_000);
    }
}
