//! A job whose weight changes while it runs (it drains or grows the batch the weight
//! function reads) gives back what its start took: no units leak past the runs that hold
//! them, and none are taken from a job still running. On the thread backend, which drives
//! the limit through core's driver as the tokio pool does.
#![cfg(feature = "weighted")]

use std::time::{Duration, Instant};

use brigade_core::{CancellationToken, Job, JobContext};
use brigade_middleware::WeightedLimit;
use brigade_thread::ThreadPool;

/// A generous bound for a hang, not a speed requirement.
const HANG: Duration = Duration::from_secs(30);

/// A batch of `items` that weighs its size and leaves `items_after` behind when it runs
/// (fewer: it processed them; more: it found more work), holding until `hold` is cancelled.
struct Batch {
    items: u64,
    items_after: u64,
    hold: Option<CancellationToken>,
}

impl Batch {
    fn new(items: u64, items_after: u64) -> Self {
        Batch {
            items,
            items_after,
            hold: None,
        }
    }
}

impl Job for Batch {
    type Output = ();
    type Error = String;

    fn run(&mut self, _: &JobContext) -> Result<(), String> {
        if let Some(hold) = &self.hold {
            hold.wait_timeout(HANG);
        }
        self.items = self.items_after;
        Ok(())
    }
}

/// Cancels its token when dropped.
struct LetGo(CancellationToken);

impl Drop for LetGo {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn limit() -> WeightedLimit<Batch> {
    WeightedLimit::new(10, |batch: &Batch| batch.items).unwrap()
}

fn pool(limit: &WeightedLimit<Batch>) -> ThreadPool<Batch> {
    ThreadPool::<Batch>::builder()
        .workers(2)
        .layer(limit.clone())
        .build()
        .unwrap()
}

/// Waits (bounded) until `ready` holds.
fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let give_up = Instant::now() + HANG;
    while !ready() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_job_that_drains_its_batch_gives_back_every_unit_it_took() {
    let limit = limit();
    let pool = pool(&limit);
    pool.submit(Batch::new(5, 0)).unwrap().join().unwrap();
    assert_eq!(limit.in_use(), 0, "the drained batch kept units");

    // A job that needs the whole capacity must find it free.
    let whole = pool.submit(Batch::new(10, 0)).unwrap();
    let started = whole.join_timeout(HANG);
    let report = pool.shutdown_timeout(HANG);
    assert!(
        started.is_ok(),
        "a 10-unit job on an idle 10-unit limit never started"
    );
    assert!(
        report.unstarted.is_empty(),
        "a graceful shutdown had to hand back {} jobs",
        report.unstarted.len()
    );
    assert_eq!(limit.in_use(), 0);
    assert!(pool.stats().is_balanced());
}

#[test]
fn a_job_that_grows_its_batch_takes_no_units_from_a_job_still_running() {
    let limit = limit();
    let pool = pool(&limit);
    let hold = CancellationToken::new();
    // Lets the holder go even when an assertion fails first, so the pool's drop does not
    // wait for it.
    let _let_go = LetGo(hold.clone());
    let holder = pool
        .submit(Batch {
            hold: Some(hold.clone()),
            ..Batch::new(5, 5)
        })
        .unwrap();
    eventually("the holder runs", || limit.in_use() == 5);

    pool.submit(Batch::new(2, 8)).unwrap().join().unwrap();
    assert_eq!(
        limit.in_use(),
        5,
        "the grown batch gave back more than it took, from the holder's units"
    );

    hold.cancel();
    holder.join().unwrap();
    assert_eq!(limit.in_use(), 0);
    pool.shutdown();
    assert!(pool.stats().is_balanced());
}
