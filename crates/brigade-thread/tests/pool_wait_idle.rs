//! `wait_idle` with several waiters: an idle moment releases every thread waiting at it,
//! even when the first one out submits new work at once (the `threadpool` crate's "join
//! wavesurfer" scenario).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use brigade_core::CancellationToken;
use brigade_thread::BoxPool;
use std::sync::Mutex;

use common::{current_tid, eventually, eventually_all_asleep, waits_for};

const WAITERS: usize = 4;
const ROUNDS: usize = 8;

#[test]
fn every_waiter_leaves_at_each_idle_moment_though_the_first_submits_at_once() {
    let pool = Arc::new(
        BoxPool::<u64, String>::builder()
            .workers(2)
            .queue_capacity(64)
            .build()
            .unwrap(),
    );
    let gates: Arc<Vec<CancellationToken>> =
        Arc::new((0..=ROUNDS).map(|_| CancellationToken::new()).collect());
    let waiting = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let tids = Arc::new(Mutex::new(Vec::new()));
    pool.execute(waits_for(&gates[0], 0)).unwrap();

    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let (pool, gates) = (Arc::clone(&pool), Arc::clone(&gates));
            let (waiting, released) = (Arc::clone(&waiting), Arc::clone(&released));
            let tids = Arc::clone(&tids);
            thread::spawn(move || {
                tids.lock()
                    .unwrap()
                    .push(current_tid().expect("a Linux thread id"));
                for round in 1..=ROUNDS {
                    waiting.fetch_add(1, Ordering::SeqCst);
                    pool.wait_idle();
                    released.fetch_add(1, Ordering::SeqCst);
                    // Work for the next round, submitted as soon as this waiter is out: the
                    // pool is busy again before the other waiters may have looked.
                    pool.execute(waits_for(&gates[round], round as u64))
                        .unwrap();
                }
            })
        })
        .collect();

    for round in 1..=ROUNDS {
        eventually("every waiter waits", || {
            waiting.load(Ordering::SeqCst) == WAITERS * round
        });
        // Counting happens just before `wait_idle`: see every waiter asleep in it before
        // the idle moment, so none arrives after it (which would be a different scenario).
        let waiter_tids = tids.lock().unwrap().clone();
        eventually_all_asleep("every waiter blocks in wait_idle", &waiter_tids);
        gates[round - 1].cancel();
        eventually("every waiter was released by this idle moment", || {
            released.load(Ordering::SeqCst) == WAITERS * round
        });
    }
    gates[ROUNDS].cancel();
    for waiter in waiters {
        waiter.join().unwrap();
    }
    pool.wait_idle();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.completed, 1 + (WAITERS * ROUNDS) as u64);
}
