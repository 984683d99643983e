//! A randomized stress test: several producers, jobs that succeed, fail, panic or sleep,
//! random cancels, elastic and layered pools, and `shutdown_now` at a random moment.
//! Every handle must resolve, per-kind counts from the handles must match `Stats`, and
//! the counters must balance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade_core::hooks::{AfterRun, Middleware, RunReport};
use brigade_core::testkit::Tally;
use brigade_core::{BoxJob, ErrorKind, JobContext, JobHandle, SubmitError, TrySubmitError};
use brigade_thread::BoxPool;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Job = BoxJob<u64, String>;

const ROUNDS: u64 = 24;
const PRODUCERS: u64 = 4;
const PER_PRODUCER: u64 = 1_500;
const MIN_ACCEPTED: u64 = 100_000;

/// Retries failed runs once, shortly after.
struct RetryOnce;

impl Middleware<Job, String> for RetryOnce {
    fn after_run(&self, _: &Job, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        if run.attempt < 2 && !run.outcome.is_success() {
            AfterRun::RetryAt(now + Duration::from_micros(200))
        } else {
            AfterRun::Done
        }
    }
}

fn random_job(rng: &mut StdRng) -> Job {
    let roll = rng.random_range(0..100u32);
    let sleep = Duration::from_micros(rng.random_range(50..800));
    BoxJob::new(move |cx: &JobContext| match roll {
        0..=69 => Ok(u64::from(roll)),
        70..=79 => Err(format!("failed {roll}")),
        80..=84 => panic!("panicked {roll}"),
        85..=94 => {
            thread::sleep(sleep);
            if cx.is_cancelled() {
                Err("noticed the cancel".into())
            } else {
                Ok(0)
            }
        }
        _ => {
            // Cooperative: waits a little for a cancel.
            cx.token().wait_timeout(sleep);
            if cx.is_cancelled() {
                Err("cancelled".into())
            } else {
                Ok(1)
            }
        }
    })
}

#[test]
fn randomized_stress_balances_every_job() {
    // Thousands of intended panics: keep the output readable, but not the test's own.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let intended = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("panicked "));
        if !intended {
            default_hook(info);
        }
    }));
    let seed = std::env::var("STRESS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    eprintln!("stress seed: {seed} (rerun with STRESS_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut accepted_total = 0;
    let started = Instant::now();

    for round in 0..ROUNDS {
        let workers = rng.random_range(1..=4);
        let elastic = rng.random_bool(0.5);
        let layered = round % 2 == 1;
        let mut builder = BoxPool::<u64, String>::builder()
            .name(format!("stress-{round}"))
            .queue_capacity(rng.random_range(1..=64));
        builder = if elastic {
            builder
                .min_workers(0)
                .max_workers(workers + 2)
                .keep_alive(Duration::from_millis(2))
        } else {
            builder.workers(workers)
        };
        if layered {
            builder = builder.layer(RetryOnce);
        }
        let pool = builder.build().unwrap();
        let accepted = AtomicU64::new(0);
        let total = PRODUCERS * PER_PRODUCER;
        // Shut down somewhere past three quarters or (sometimes) after the last submit, so
        // the rounds add up to well over `MIN_ACCEPTED` whatever the seed.
        let shutdown_at = rng.random_range(total * 3 / 4..total * 11 / 10);
        let seeds: Vec<u64> = (0..PRODUCERS).map(|_| rng.random()).collect();

        let (handles, refused, report) = thread::scope(|scope| {
            let producers: Vec<_> = seeds
                .iter()
                .map(|&seed| {
                    let (pool, accepted) = (&pool, &accepted);
                    scope.spawn(move || {
                        let mut rng = StdRng::seed_from_u64(seed);
                        let mut handles: Vec<JobHandle<u64, String>> = Vec::new();
                        let mut refused = 0u64;
                        for _ in 0..PER_PRODUCER {
                            let job = random_job(&mut rng);
                            let submitted = if rng.random_bool(0.2) {
                                match pool.try_submit(job) {
                                    Ok(handle) => Ok(handle),
                                    Err(TrySubmitError::Full(job)) => pool.submit(job),
                                    Err(TrySubmitError::Closed(job)) => {
                                        Err(SubmitError::Closed(job))
                                    }
                                    Err(other) => panic!("unexpected {other:?}"),
                                }
                            } else {
                                pool.submit(job)
                            };
                            match submitted {
                                Ok(handle) => {
                                    accepted.fetch_add(1, Ordering::Relaxed);
                                    if rng.random_bool(0.05) {
                                        handle.cancel();
                                    }
                                    handles.push(handle);
                                }
                                Err(SubmitError::Closed(_)) => refused += 1,
                                Err(other) => panic!("unexpected {other:?}"),
                            }
                            if rng.random_bool(0.01) {
                                // Cancel an earlier job: queued, running or already done.
                                let index = rng.random_range(0..handles.len().max(1));
                                if let Some(handle) = handles.get(index) {
                                    handle.cancel();
                                }
                            }
                        }
                        (handles, refused)
                    })
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(60);
            while accepted.load(Ordering::Relaxed) < shutdown_at
                && !producers.iter().all(|p| p.is_finished())
            {
                assert!(Instant::now() < deadline, "round {round} stalled");
                thread::sleep(Duration::from_micros(200));
            }
            let report = pool.shutdown_now();
            let mut handles = Vec::new();
            let mut refused = 0;
            for producer in producers {
                let (h, r) = producer.join().unwrap();
                handles.extend(h);
                refused += r;
            }
            (handles, refused, report)
        });

        let accepted = accepted.into_inner();
        assert_eq!(accepted + refused, total);
        let mut tally = Tally::new();
        for handle in handles {
            let result = handle
                .join_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("round {round}: a handle never resolved"));
            tally.record(&result);
        }
        let stats = pool.stats();
        assert_eq!(stats.submitted, accepted, "round {round}: {stats:?}");
        assert!(stats.is_balanced(), "round {round}: {stats:?}");
        tally.assert_agrees_with(&stats, &format!("round {round}"));
        assert_eq!(
            report.unstarted.len() as u64,
            stats.returned,
            "round {round}"
        );
        let allowed = [
            None,
            Some(ErrorKind::Failed),
            Some(ErrorKind::Panicked),
            Some(ErrorKind::Cancelled),
            Some(ErrorKind::Returned),
        ];
        assert_eq!(tally.only_kinds(&allowed), Ok(()), "round {round}");
        assert_eq!(stats.workers, 0, "round {round}: workers stopped");
        if !layered {
            assert_eq!(stats.retried, 0);
        }
        accepted_total += accepted;
    }
    eprintln!(
        "stress: {accepted_total} jobs accepted in {:?}",
        started.elapsed()
    );
    assert!(
        accepted_total >= MIN_ACCEPTED,
        "only {accepted_total} jobs accepted"
    );
}
