//! One job's submit + join on a pool that sat idle before it: the workers (and a waiting
//! caller) have gone to sleep, so the time includes waking them, which a back-to-back loop
//! (`submit.rs`'s `submit_join`) can hide behind a spin. Each iteration first leaves the pool
//! alone for [`IDLE_GAP`], untimed, then times one job from submit to its result.
//!
//! The channel round trips are the floors: a crossbeam channel pair to a parked thread, and
//! a tokio mpsc pair to a parked task.
//!
//! ```text
//! cargo bench -p brigade-benches --bench idle_round_trip
//! ```
//!
//! Criterion writes its estimates to `target/criterion/idle_round_trip/*/new/estimates.json`;
//! `cargo xtask bench` reads brigade-thread's median from there for its targets table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use brigade_benches::{BenchJob, Work, available_parallelism};
use brigade_thread::ThreadPool;
use brigade_tokio::TokioPool;
use criterion::{Criterion, criterion_group, criterion_main};

/// How long the pool sits idle before each timed job: far longer than any brief spin a
/// worker or a joiner does before it parks, so every iteration starts from parked threads.
const IDLE_GAP: Duration = Duration::from_millis(1);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(available_parallelism())
        .enable_time()
        .build()
        .expect("runtime")
}

/// Calls `round_trip` `iterations` times, each after [`IDLE_GAP`] of idleness, and returns
/// the time spent inside it only.
fn after_idle(iterations: u64, mut round_trip: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iterations {
        std::thread::sleep(IDLE_GAP);
        let started = Instant::now();
        round_trip();
        total += started.elapsed();
    }
    total
}

fn idle_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("idle_round_trip");
    // Each iteration costs a millisecond of wall time for a few microseconds measured: a
    // short measured budget keeps the wall time to seconds per function.
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(20))
        .measurement_time(Duration::from_millis(50));
    let job = BenchJob::new(Work::Noop, 1);

    let pool = ThreadPool::<BenchJob>::builder()
        .workers(available_parallelism())
        .build()
        .expect("valid pool");
    group.bench_function("brigade-thread", |b| {
        b.iter_custom(|iterations| {
            after_idle(iterations, || {
                let output = pool
                    .submit(black_box(job))
                    .expect("accepted")
                    .join()
                    .expect("ran");
                black_box(output);
            })
        });
    });
    drop(pool);

    let runtime = runtime();
    let pool = TokioPool::<BenchJob>::builder()
        .runtime_handle(runtime.handle().clone())
        .workers(available_parallelism())
        .build()
        .expect("valid pool");
    group.bench_function("brigade-tokio", |b| {
        b.iter_custom(|iterations| {
            // The caller is `block_on`'s thread, not one of the runtime's workers: a
            // blocking sleep here idles the pool without holding up its tasks, with a
            // finer gap than tokio's 1 ms timer.
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    std::thread::sleep(IDLE_GAP);
                    let started = Instant::now();
                    let handle = pool.submit(black_box(job)).await.expect("accepted");
                    black_box(handle.await.expect("ran"));
                    total += started.elapsed();
                }
                total
            })
        });
    });
    drop(pool);

    let (jobs, job_queue) = crossbeam_channel::bounded::<BenchJob>(1);
    let (result_sender, results) = crossbeam_channel::bounded::<u64>(1);
    let worker = std::thread::spawn(move || {
        for job in job_queue {
            let _ = result_sender.send(job.work.run(job.input));
        }
    });
    group.bench_function("crossbeam-channel", |b| {
        b.iter_custom(|iterations| {
            after_idle(iterations, || {
                jobs.send(black_box(job)).expect("worker alive");
                black_box(results.recv().expect("worker alive"));
            })
        });
    });
    drop(jobs);
    worker.join().expect("worker");

    let (jobs, mut job_queue) = tokio::sync::mpsc::channel::<BenchJob>(1);
    let (result_sender, mut results) = tokio::sync::mpsc::channel::<u64>(1);
    let worker = runtime.spawn(async move {
        while let Some(job) = job_queue.recv().await {
            let _ = result_sender.send(job.work.run(job.input)).await;
        }
    });
    group.bench_function("tokio-mpsc", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    std::thread::sleep(IDLE_GAP);
                    let started = Instant::now();
                    jobs.send(black_box(job)).await.expect("worker alive");
                    black_box(results.recv().await.expect("worker alive"));
                    total += started.elapsed();
                }
                total
            })
        });
    });
    drop(jobs);
    runtime.block_on(worker).expect("worker");
    group.finish();
}

criterion_group!(benches, idle_round_trip);
criterion_main!(benches);
