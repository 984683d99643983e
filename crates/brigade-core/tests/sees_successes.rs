//! A successful run skips the after-run hooks of layers that do not want successes, and
//! reads no clock for them when no layer does; a failure still reaches every layer, and a
//! layer that does not say sees every run.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use brigade_core::JobId;
use brigade_core::backend::{Backend, Done, JobDriver, RunEnd, Task};
use brigade_core::hooks::{AfterRun, Layers, Middleware, RunReport};

/// Counts the runs its `after_run` saw; wants successes as `successes` says.
struct Watcher {
    seen: AtomicU32,
    successes: bool,
}

impl Watcher {
    fn new(successes: bool) -> Arc<Self> {
        Arc::new(Watcher {
            seen: AtomicU32::new(0),
            successes,
        })
    }

    fn seen(&self) -> u32 {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Middleware<u32, String> for Watcher {
    fn after_run(&self, _: &u32, _: &RunReport<'_, String>, _: Instant) -> AfterRun {
        self.seen.fetch_add(1, Ordering::Relaxed);
        AfterRun::Done
    }

    fn sees_successes(&self) -> bool {
        self.successes
    }
}

/// A backend that counts its clock reads.
#[derive(Default)]
struct CountingClock(Cell<u32>);

impl Backend<u32, (), String> for CountingClock {
    fn now(&self) -> Instant {
        self.0.set(self.0.get() + 1);
        Instant::now()
    }
    fn delay(&self, _: Task<u32, (), String>, _: Instant) {
        unreachable!("nothing here is delayed")
    }
    fn requeue(&self, _: Task<u32, (), String>) {
        unreachable!("nothing here is parked")
    }
    fn offer_parked_later(&self) {}
    fn job_ended(&self) {}
}

/// Runs one job to `end` through a driver with `layers`; returns the clock reads it took.
fn run_once(layers: Layers<u32, String>, end: RunEnd<(), String>) -> u32 {
    let driver = JobDriver::new("p".into(), layers);
    let backend = CountingClock::default();
    let run = driver
        .begin(
            &backend,
            &driver.seat(),
            Task::new(7, Done::Detached(JobId::new(1))),
        )
        .expect("nothing holds the start");
    driver.end(&backend, run, end);
    backend.0.get()
}

#[test]
fn a_success_skips_the_layers_that_want_only_failures_and_reads_one_clock() {
    let failures_only = Watcher::new(false);
    let layers = Layers::new().with_shared(failures_only.clone());
    assert!(!layers.sees_successes());
    let clock_reads = run_once(layers, RunEnd::Returned(Ok(())));
    assert_eq!(failures_only.seen(), 0);
    assert_eq!(clock_reads, 1, "the start's read only");
}

#[test]
fn a_layer_that_wants_successes_sees_them_and_the_others_still_do_not() {
    let failures_only = Watcher::new(false);
    let tally = Watcher::new(true);
    let layers = Layers::new()
        .with_shared(failures_only.clone())
        .with_shared(tally.clone());
    assert!(layers.sees_successes());
    let clock_reads = run_once(layers, RunEnd::Returned(Ok(())));
    assert_eq!((failures_only.seen(), tally.seen()), (0, 1));
    assert_eq!(clock_reads, 2, "the start's and the end's");
}

#[test]
fn a_failure_reaches_every_layer() {
    let failures_only = Watcher::new(false);
    let tally = Watcher::new(true);
    let layers = Layers::new()
        .with_shared(failures_only.clone())
        .with_shared(tally.clone());
    run_once(layers, RunEnd::Returned(Err("no".into())));
    assert_eq!((failures_only.seen(), tally.seen()), (1, 1));
}

#[test]
fn a_layer_that_does_not_say_sees_every_run() {
    struct Silent;
    impl Middleware<u32, String> for Silent {}
    assert!(Layers::<u32, String>::new().with(Silent).sees_successes());
}
