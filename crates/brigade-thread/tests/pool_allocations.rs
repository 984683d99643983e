//! The hot path allocates nothing per job beyond the job's storage and its handle:
//! `execute` and `map` on a typed pool allocate nothing per job, `submit` one handle per
//! job.
//! Alone in its binary: it counts every allocation of the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use brigade_core::{Job, JobContext};
use brigade_thread::ThreadPool;

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

/// A job with no heap storage of its own.
struct Count;

impl Job for Count {
    type Output = u64;
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<u64, String> {
        RAN.fetch_add(1, Ordering::Relaxed);
        Ok(cx.id().get())
    }
}

const JOBS: usize = 20_000;
/// Allowance for one-time allocations (thread-locals of waiting threads, wait lists
/// growing once): a per-job allocation would exceed it many times over.
const SLACK: usize = 200;

#[test]
fn execute_and_map_allocate_nothing_per_job_and_submit_only_the_handle() {
    let pool = ThreadPool::<Count>::builder()
        .workers(2)
        .queue_capacity(64)
        .build()
        .unwrap();
    // Warm up: let every thread do its one-time allocations.
    for _ in 0..1000 {
        pool.execute(Count).unwrap();
    }
    let warm: Vec<_> = (0..1000).map(|_| pool.submit(Count).unwrap()).collect();
    warm.into_iter().for_each(|handle| drop(handle.join()));
    pool.wait_idle();

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..JOBS {
        pool.execute(Count).unwrap();
    }
    pool.wait_idle();
    let executed = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(
        executed < SLACK,
        "execute: {executed} allocations for {JOBS} jobs"
    );

    let mut handles = Vec::with_capacity(JOBS);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..JOBS {
        handles.push(pool.submit(Count).unwrap());
    }
    for handle in handles.drain(..) {
        handle.join().unwrap();
    }
    let submitted = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(
        submitted < JOBS + SLACK,
        "submit: {submitted} allocations for {JOBS} jobs"
    );

    // `map` keeps a result cell per job in flight and reuses it: what it allocates grows
    // with the jobs in flight, not with the jobs.
    let in_flight = 64;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mapped = pool
        .map((0..JOBS).map(|_| Count), in_flight)
        .filter(Result::is_ok)
        .count();
    let by_map = ALLOCATIONS.load(Ordering::Relaxed) - before;
    eprintln!("{JOBS} jobs: execute made {executed} allocations, submit {submitted}, map {by_map}");
    assert_eq!(mapped, JOBS);
    assert!(
        by_map < in_flight + SLACK,
        "map: {by_map} allocations for {JOBS} jobs"
    );
    assert_eq!(RAN.load(Ordering::Relaxed), 2000 + 3 * JOBS as u64);
}
