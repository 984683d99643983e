//! A job granted capacity while it waited holds that capacity until it runs; if it is
//! dropped first (evicted by backpressure), the capacity goes back, or nobody could use it.

use std::cell::RefCell;
use std::sync::Mutex;
use std::time::Instant;

use brigade_core::JobId;
use brigade_core::backend::RunEnd;
use brigade_core::backend::{Backend, Done, JobDriver, Task};
use brigade_core::hooks::{DropReason, Layers, Middleware, Start};

/// One unit of capacity: a start takes it, a release gives it back.
struct OneUnit {
    free: Mutex<bool>,
}

impl Middleware<u32, String> for OneUnit {
    fn before_start(&self, _: &u32, _: Instant) -> Start {
        let mut free = self.free.lock().unwrap();
        if std::mem::take(&mut *free) {
            Start::Now
        } else {
            Start::WhenCapacityFrees
        }
    }

    fn release(&self, _: &u32) {
        *self.free.lock().unwrap() = true;
    }
}

/// A backend that keeps what the driver requeues, as a ready queue would.
#[derive(Default)]
struct Requeued(RefCell<Vec<Task<u32, (), String>>>);

impl Backend<u32, (), String> for Requeued {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn delay(&self, _: Task<u32, (), String>, _: Instant) {
        unreachable!("nothing here is delayed")
    }
    fn requeue(&self, task: Task<u32, (), String>) {
        self.0.borrow_mut().push(task);
    }
    fn offer_parked_later(&self) {}
    fn job_ended(&self) {}
}

fn task(id: u64) -> Task<u32, (), String> {
    Task::new(7, Done::Detached(JobId::new(id)))
}

#[test]
fn an_evicted_granted_job_gives_its_capacity_back() {
    let unit = std::sync::Arc::new(OneUnit {
        free: Mutex::new(true),
    });
    let layers = Layers::new().with_shared(unit.clone());
    let driver = JobDriver::<u32, (), String>::new("granted".into(), layers);
    let backend = Requeued::default();
    let seat = driver.seat();

    let holder = driver
        .begin(&backend, &seat, task(1))
        .expect("the unit is free");
    assert!(
        driver.begin(&backend, &seat, task(2)).is_none(),
        "parks for the unit"
    );
    assert_eq!(driver.parked(), 1);

    // The holder's end grants the unit to the parked job, which goes back to the queue.
    driver.end(&backend, holder, RunEnd::Returned(Ok(())));
    let granted = backend.0.borrow_mut().pop().expect("granted and requeued");
    assert!(
        !*unit.free.lock().unwrap(),
        "the granted job holds the unit"
    );

    // Backpressure evicts it before it runs: the unit must come back.
    driver.drop_admitted(&backend, granted, None, DropReason::Evicted);
    assert!(
        *unit.free.lock().unwrap(),
        "the evicted job's unit was given back"
    );
    let counts = driver.counters().snapshot(Default::default());
    assert_eq!((counts.completed, counts.dropped), (1, 1));
}
