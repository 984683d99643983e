//! Per-operation costs of brigade's pools: a submit + join round trip, `execute`
//! (fire-and-forget, timed until the pool is idle again), and `try_submit` refused by a full
//! queue. The crossbeam-channel round trip is the floor to read the thread pool against,
//! a spawned tokio task's the floor for the tokio pool.

use std::hint::black_box;
use std::time::{Duration, Instant};

use brigade_benches::{BenchJob, Gate, Work, available_parallelism};
use brigade_thread::ThreadPool;
use brigade_tokio::TokioPool;
use criterion::{Criterion, criterion_group, criterion_main};

fn thread_pool(workers: usize, capacity: usize) -> ThreadPool<BenchJob> {
    ThreadPool::builder()
        .workers(workers)
        .queue_capacity(capacity)
        .build()
        .expect("valid pool")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(available_parallelism())
        .enable_time()
        .build()
        .expect("runtime")
}

fn tokio_pool(runtime: &tokio::runtime::Runtime, capacity: usize) -> TokioPool<BenchJob> {
    TokioPool::builder()
        .runtime_handle(runtime.handle().clone())
        .workers(available_parallelism())
        .queue_capacity(capacity)
        .build()
        .expect("valid pool")
}

fn submit_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("submit_join");
    let job = BenchJob::new(Work::Noop, 1);

    let pool = thread_pool(available_parallelism(), 1024);
    group.bench_function("brigade-thread", |b| {
        b.iter(|| {
            pool.submit(black_box(job))
                .expect("accepted")
                .join()
                .expect("ran")
        });
    });
    drop(pool);

    let runtime = runtime();
    let pool = tokio_pool(&runtime, 1024);
    group.bench_function("brigade-tokio", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    let handle = pool.submit(black_box(job)).await.expect("accepted");
                    black_box(handle.await.expect("ran"));
                }
                started.elapsed()
            })
        });
    });
    drop(pool);
    // The tokio floor: one task spawned from outside the runtime onto one of its threads
    // and awaited, the two cross-thread wake-ups brigade-tokio's round trip also pays.
    group.bench_function("tokio spawn round trip", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    let job = black_box(job);
                    let task = tokio::spawn(async move { job.work.run_async(job.input).await });
                    black_box(task.await.expect("ran"));
                }
                started.elapsed()
            })
        });
    });

    // The floor: one job and one result through a pair of channels to a worker thread.
    let (jobs, job_queue) = crossbeam_channel::bounded::<BenchJob>(1024);
    let (result_sender, results) = crossbeam_channel::unbounded::<u64>();
    let worker = std::thread::spawn(move || {
        for job in job_queue {
            let _ = result_sender.send(job.work.run(job.input));
        }
    });
    group.bench_function("crossbeam-channel round trip", |b| {
        b.iter(|| {
            jobs.send(black_box(job)).expect("worker alive");
            results.recv().expect("worker alive")
        });
    });
    drop(jobs);
    worker.join().expect("worker");
    group.finish();
}

fn execute(c: &mut Criterion) {
    const BATCH: u64 = 1_000;
    let mut group = c.benchmark_group("execute");
    let pool = thread_pool(available_parallelism(), 1024);
    group.bench_function("brigade-thread", |b| {
        b.iter_custom(|iterations| {
            let started = Instant::now();
            for input in 0..iterations {
                pool.execute(BenchJob::new(Work::Noop, input))
                    .expect("accepted");
                if input % BATCH == BATCH - 1 {
                    pool.wait_idle();
                }
            }
            pool.wait_idle();
            started.elapsed()
        });
    });
    drop(pool);

    let runtime = runtime();
    let pool = tokio_pool(&runtime, 1024);
    group.bench_function("brigade-tokio", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for input in 0..iterations {
                    pool.execute(BenchJob::new(Work::Noop, input))
                        .await
                        .expect("accepted");
                }
                pool.wait_idle().await;
                started.elapsed()
            })
        });
    });
    drop(pool);
    group.finish();
}

/// Every worker parked in the gate and the queue full: `try_submit` must refuse at once and
/// hand the job back.
fn try_submit_full(c: &mut Criterion) {
    let mut group = c.benchmark_group("try_submit_full");
    let gate = Gate::global();
    let job = BenchJob::new(Work::Noop, 1);

    gate.close();
    let workers = available_parallelism();
    let pool = thread_pool(workers, 1);
    let mut parked: Vec<_> = (0..workers as u64)
        .map(|input| {
            pool.submit(BenchJob::new(Work::Gate, input))
                .expect("accepted")
        })
        .collect();
    gate.wait_for(workers);
    parked.push(pool.submit(job).expect("room for one"));
    group.bench_function("brigade-thread", |b| {
        b.iter(|| pool.try_submit(black_box(job)).expect_err("queue is full"));
    });
    gate.open();
    for handle in parked {
        handle.join().expect("ran");
    }
    drop(pool);

    let runtime = runtime();
    gate.close();
    let pool = tokio_pool(&runtime, 1);
    let mut parked: Vec<_> = (0..workers as u64)
        .map(|input| pool.try_submit(BenchJob::new(Work::Gate, input)))
        .collect();
    // Workers take gate jobs as they come: wait until each has one, then fill the queue.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && parked.iter().any(Result::is_err) {
        for (input, slot) in parked.iter_mut().enumerate() {
            if slot.is_err() {
                *slot = pool.try_submit(BenchJob::new(Work::Gate, input as u64));
            }
        }
    }
    gate.wait_for(workers);
    let filler = pool.try_submit(job).expect("room for one");
    group.bench_function("brigade-tokio", |b| {
        b.iter(|| pool.try_submit(black_box(job)).expect_err("queue is full"));
    });
    gate.open();
    runtime.block_on(async {
        for handle in parked.into_iter().flatten() {
            handle.await.expect("ran");
        }
        filler.await.expect("ran");
    });
    drop(pool);
    group.finish();
}

criterion_group!(benches, submit_join, execute, try_submit_full);
criterion_main!(benches);
