//! Rate limit, weighted concurrency, timeout and backpressure on the thread backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::{BoxJob, CancellationToken, ErrorKind, JobContext, SubmitError};
use brigade_thread::{BoxPool, ThreadPool};

type Pool = BoxPool<(), String>;

fn job(f: impl FnMut(&JobContext) -> Result<(), String> + Send + 'static) -> BoxJob<(), String> {
    BoxJob::new(f)
}

#[cfg(feature = "rate-limit")]
#[test]
fn a_rate_limit_shared_by_two_pools_spaces_all_their_starts() {
    use brigade_middleware::{Rate, RateLimit};

    let limit = RateLimit::builder(Rate::per_second(200)).build().unwrap();
    let pools: Vec<Pool> = (0..2)
        .map(|_| {
            BoxPool::builder()
                .workers(3)
                .layer(limit.clone())
                .build()
                .unwrap()
        })
        .collect();
    let submitted = Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..20)
        .map(|n| {
            let starts = Arc::clone(&starts);
            pools[n % 2]
                .submit(job(move |_| {
                    starts.lock().unwrap().push(Instant::now());
                    Ok(())
                }))
                .unwrap()
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    // GCRA grants the k-th start no earlier than (k - 1) intervals after the first, and
    // the first no earlier than the submit: a lower bound that no scheduling can break.
    let last = *starts.lock().unwrap().iter().max().unwrap();
    assert!(
        last - submitted >= Duration::from_millis(5) * 19,
        "{:?}",
        last - submitted
    );
    for pool in &pools {
        pool.shutdown();
        let stats = pool.stats();
        assert_eq!(stats.completed, 10);
        assert!(stats.is_balanced());
    }
}

#[cfg(feature = "weighted")]
#[test]
fn weighted_units_never_exceed_the_limit_and_heavy_jobs_are_refused() {
    use brigade_middleware::WeightedLimit;

    struct Weighed {
        weight: u64,
        running: Arc<AtomicU64>,
        peak: Arc<AtomicU64>,
    }
    impl brigade_core::Job for Weighed {
        type Output = ();
        type Error = String;
        fn run(&mut self, _: &JobContext) -> Result<(), String> {
            let now = self.running.fetch_add(self.weight, Ordering::SeqCst) + self.weight;
            self.peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            self.running.fetch_sub(self.weight, Ordering::SeqCst);
            Ok(())
        }
    }

    let limit = WeightedLimit::new(10, |job: &Weighed| job.weight).unwrap();
    let pool = ThreadPool::<Weighed>::builder()
        .workers(8)
        .layer(limit.clone())
        .build()
        .unwrap();
    let (running, peak) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let make = |weight| Weighed {
        weight,
        running: Arc::clone(&running),
        peak: Arc::clone(&peak),
    };
    for n in 0..200 {
        pool.execute(make(n % 5 + 1)).unwrap();
    }
    match pool.submit(make(11)) {
        Err(SubmitError::Rejected(job, reason)) => {
            assert_eq!(job.weight, 11, "the job comes back");
            assert_eq!(
                reason.reason(),
                "job weight 11 exceeds the limit of 10 units"
            );
        }
        other => panic!("expected a rejection, got {:?}", other.map(drop)),
    }
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(stats.completed, 200);
    assert_eq!(stats.rejected, 1);
    assert!(
        peak.load(Ordering::SeqCst) <= 10,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert!(peak.load(Ordering::SeqCst) > 1, "jobs did run side by side");
    assert_eq!(limit.in_use(), 0, "every unit released");
}

#[cfg(all(feature = "timeout", feature = "retry"))]
#[test]
fn a_timed_out_run_is_retried_then_ends_timed_out() {
    use brigade_core::hooks::RunOutcome;
    use brigade_middleware::{Backoff, Retry, Timeout};

    let pool: Pool = BoxPool::builder()
        .workers(2)
        .layer(Timeout::after(Duration::from_millis(20)).unwrap())
        .layer(
            Retry::builder()
                .max_attempts(2)
                .backoff(Backoff::constant(Duration::from_millis(1)))
                .retry_if(|outcome| matches!(outcome, RunOutcome::TimedOut(_)))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&runs);
    let handle = pool
        .submit(job(move |cx| {
            counter.fetch_add(1, Ordering::SeqCst);
            assert!(cx.deadline().is_some(), "the deadline is in the context");
            // Cooperative: waits for the token the pool cancels at the deadline.
            cx.token().wait_timeout(Duration::from_secs(30));
            Err("gave up".into())
        }))
        .unwrap();
    let error = handle.join().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!((stats.timed_out, stats.retried), (1, 1));
    assert!(stats.is_balanced());
}

#[cfg(feature = "drop")]
mod backpressure {
    use super::*;
    use brigade_core::hooks::DropReason;
    use brigade_middleware::{Backpressure, Overflow};

    /// One worker held on a gate and a queue of 2: every later submit meets a full queue.
    fn blocked_pool(
        overflow: Overflow,
        dropped: Arc<Mutex<Vec<(u32, DropReason)>>>,
    ) -> (Pool, CancellationToken) {
        let pool: Pool = BoxPool::builder()
            .workers(1)
            .queue_capacity(2)
            .layer(Backpressure::new(overflow).on_drop(move |_job, reason| {
                let mut dropped = dropped.lock().unwrap();
                let n = dropped.len() as u32;
                dropped.push((n, reason));
            }))
            .build()
            .unwrap();
        let gate = CancellationToken::new();
        let held = gate.clone();
        pool.execute(job(move |_| {
            held.wait_timeout(Duration::from_secs(30));
            Ok(())
        }))
        .unwrap();
        while pool.stats().busy == 0 {
            std::thread::yield_now();
        }
        (pool, gate)
    }

    #[test]
    fn drop_newest_and_drop_oldest_hand_every_dropped_job_to_the_callback() {
        for (overflow, reason) in [
            (Overflow::DropNewest, DropReason::Newest),
            (Overflow::DropOldest, DropReason::Evicted),
        ] {
            let dropped = Arc::new(Mutex::new(Vec::new()));
            let (pool, gate) = blocked_pool(overflow, Arc::clone(&dropped));
            let handles: Vec<_> = (0..10)
                .map(|_| pool.submit(job(|_| Ok(()))).unwrap())
                .collect();
            gate.cancel();
            let outcomes: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
            pool.shutdown();
            let stats = pool.stats();
            let dropped = dropped.lock().unwrap();
            assert_eq!(dropped.len(), 8, "{overflow:?}");
            assert!(dropped.iter().all(|(_, r)| *r == reason));
            assert_eq!(stats.dropped, 8);
            let dropped_handles = outcomes
                .iter()
                .filter(|o| matches!(o, Err(e) if e.kind() == ErrorKind::Dropped))
                .count();
            assert_eq!(dropped_handles, 8);
            // Which two ran tells the policies apart: the first two, or the last two.
            let ran: Vec<usize> = outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| o.is_ok())
                .map(|(i, _)| i)
                .collect();
            let expected = if overflow == Overflow::DropNewest {
                vec![0, 1]
            } else {
                vec![8, 9]
            };
            assert_eq!(ran, expected, "{overflow:?}");
            assert!(stats.is_balanced(), "{stats:?}");
        }
    }

    #[test]
    fn reject_hands_the_job_back_with_a_reason() {
        let (pool, gate) = blocked_pool(Overflow::Reject, Arc::new(Mutex::new(Vec::new())));
        let _queued: Vec<_> = (0..2)
            .map(|_| pool.submit(job(|_| Ok(()))).unwrap())
            .collect();
        match pool.submit(job(|_| Ok(()))) {
            Err(SubmitError::Rejected(_job, reason)) => {
                assert_eq!(reason.reason(), "queue full (2 of 2 jobs)")
            }
            other => panic!("expected a rejection, got {:?}", other.map(drop)),
        }
        gate.cancel();
        pool.shutdown();
        let stats = pool.stats();
        assert_eq!((stats.rejected, stats.dropped, stats.completed), (1, 0, 3));
    }
}

/// Backpressure that evicts, put before a weighted limit (the order the architecture guide
/// suggests): a job heavier than the limit is refused, not queued in an evicted job's
/// place, where it could never start and every later job would wait behind it.
#[cfg(all(feature = "weighted", feature = "drop"))]
#[test]
fn an_overweight_job_is_refused_even_when_backpressure_would_evict_for_it() {
    use brigade_core::TrySubmitError;
    use brigade_middleware::{Backpressure, Overflow, WeightedLimit};

    /// Weighs `weight`; waits for `gate` if it has one.
    struct Heavy {
        weight: u64,
        gate: Option<CancellationToken>,
    }
    impl brigade_core::Job for Heavy {
        type Output = u64;
        type Error = String;
        fn run(&mut self, _: &JobContext) -> Result<u64, String> {
            if let Some(gate) = &self.gate {
                gate.wait_timeout(Duration::from_secs(20));
            }
            Ok(self.weight)
        }
    }

    let gate = CancellationToken::new();
    let pool = ThreadPool::<Heavy>::builder()
        .workers(1)
        .queue_capacity(1)
        .layer(Backpressure::new(Overflow::DropOldest))
        .layer(WeightedLimit::new(10, |job: &Heavy| job.weight).unwrap())
        .build()
        .unwrap();
    let job = |weight| Heavy { weight, gate: None };
    let running = pool
        .submit(Heavy {
            weight: 1,
            gate: Some(gate.clone()),
        })
        .unwrap();
    while pool.stats().busy == 0 {
        std::thread::yield_now();
    }
    let queued = pool.submit(job(2)).unwrap();
    match pool.try_submit(job(20)) {
        Err(TrySubmitError::Rejected(heavy, _)) => assert_eq!(heavy.weight, 20),
        other => panic!("heavier than the limit: refused, not {:?}", other.is_ok()),
    }
    gate.cancel();
    assert_eq!(running.join(), Ok(1));
    assert_eq!(
        queued.join(),
        Ok(2),
        "not evicted for a job that was refused"
    );
    let stats = pool.stats();
    assert_eq!(stats.dropped, 0, "{stats:?}");
    pool.shutdown();
}
