//! The hot path allocates nothing per job beyond the job's storage and its handle:
//! `execute` and `map` on a typed pool allocate nothing per job, `submit` and
//! `map_unordered` one handle per job.
//! Alone in its binary: it counts every allocation of the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use brigade_core::{AsyncJob, JobContext};
use brigade_tokio::TokioPool;
use futures_util::StreamExt;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static RAN: AtomicU64 = AtomicU64::new(0);

/// A job with no heap storage of its own, whose run is its own future (no box).
struct Count;

impl AsyncJob for Count {
    type Output = u64;
    type Error = String;

    async fn run(&mut self, cx: &JobContext) -> Result<u64, String> {
        RAN.fetch_add(1, Ordering::Relaxed);
        Ok(cx.id().get())
    }
}

const JOBS: usize = 20_000;
/// Allowance for one-time allocations (the runtime's and the pool's wait lists growing
/// once): a per-job allocation would exceed it many times over.
const SLACK: usize = 200;

#[test]
fn execute_and_map_allocate_nothing_per_job_submit_and_map_unordered_only_the_handle() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = TokioPool::<Count>::builder()
            .workers(2)
            .queue_capacity(64)
            .build()
            .unwrap();
        // Warm up: let the runtime and the pool do their one-time allocations.
        for _ in 0..1000 {
            pool.execute(Count).await.unwrap();
        }
        let warm: Vec<_> = pool
            .map(futures_util::stream::iter((0..1000).map(|_| Count)), 64)
            .collect()
            .await;
        assert_eq!(warm.len(), 1000);
        pool.wait_idle().await;

        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..JOBS {
            pool.execute(Count).await.unwrap();
        }
        pool.wait_idle().await;
        let executed = ALLOCATIONS.load(Ordering::Relaxed) - before;

        let mut handles = Vec::with_capacity(JOBS);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..JOBS {
            handles.push(pool.submit(Count).await.unwrap());
        }
        for handle in handles.drain(..) {
            handle.await.unwrap();
        }
        let submitted = ALLOCATIONS.load(Ordering::Relaxed) - before;

        // `map` keeps a result cell per job in flight and reuses it: what it allocates
        // grows with the jobs in flight, not with the jobs.
        let in_flight = 64;
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let mapped = pool
            .map(
                futures_util::stream::iter((0..JOBS).map(|_| Count)),
                in_flight,
            )
            .filter(|result| std::future::ready(result.is_ok()))
            .count()
            .await;
        let by_map = ALLOCATIONS.load(Ordering::Relaxed) - before;

        // `map_unordered` takes results as jobs end, through their handles: one each.
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let unordered = pool
            .map_unordered(
                futures_util::stream::iter((0..JOBS).map(|_| Count)),
                in_flight,
            )
            .filter(|result| std::future::ready(result.is_ok()))
            .count()
            .await;
        let by_unordered = ALLOCATIONS.load(Ordering::Relaxed) - before;
        eprintln!(
            "{JOBS} jobs: execute made {executed} allocations, submit {submitted}, map {by_map}, \
             map_unordered {by_unordered}"
        );
        assert!(
            executed < SLACK,
            "execute: {executed} allocations for {JOBS} jobs"
        );
        assert!(
            submitted < JOBS + SLACK,
            "submit: {submitted} allocations for {JOBS} jobs"
        );
        assert_eq!(mapped, JOBS);
        assert!(
            by_map < in_flight + SLACK,
            "map: {by_map} allocations for {JOBS} jobs"
        );
        assert_eq!(unordered, JOBS);
        assert!(
            by_unordered < JOBS + in_flight + SLACK,
            "map_unordered: {by_unordered} allocations for {JOBS} jobs"
        );
        assert_eq!(RAN.load(Ordering::Relaxed), 2000 + 4 * JOBS as u64);
        pool.shutdown().await;
    });
}
