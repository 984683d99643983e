//! A task that panics goes through the group's bookkeeping like any other end: it cancels
//! the group's token at once (not when `wait` happens to join its thread) and is counted.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use brigade_thread::ErrGroup;
use common::{PATIENCE, eventually};

#[test]
fn a_panic_cancels_the_token_and_is_counted_before_anyone_waits() {
    let mut group = ErrGroup::<String>::new();
    group.spawn(|_token| panic!("task exploded"));
    let token = group.token();
    eventually("the panic cancelled the group's token", || {
        token.is_cancelled()
    });
    let counts = group.counts();
    assert_eq!((counts.started, counts.running()), (1, 0), "{counts:?}");
    assert!(catch_unwind(AssertUnwindSafe(|| group.wait())).is_err());
}

#[test]
fn an_earlier_task_waiting_on_the_token_is_released_by_a_later_panic() {
    let mut group = ErrGroup::<String>::new();
    let released = Arc::new(AtomicBool::new(false));
    {
        let released = Arc::clone(&released);
        // Spawned first, so `wait` joins it first.
        group.spawn(move |token| {
            released.store(token.wait_timeout(PATIENCE), Ordering::SeqCst);
            Ok(())
        });
    }
    group.spawn(|_token| panic!("task exploded"));
    let waited = catch_unwind(AssertUnwindSafe(|| group.wait()));
    assert!(waited.is_err(), "wait resumes the panic");
    assert!(
        released.load(Ordering::SeqCst),
        "the panic cancelled the token the first task waited on"
    );
}
