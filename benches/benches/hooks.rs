//! The cost of one hook pass (admit → before start → after run → release) through core's
//! `Layers`, empty and with three layers: what the middleware adds per job, before any
//! queueing. Beside them, the one clock read a start costs when a layer needs the time
//! (`Layers::needs_start_time`): on a thread pool it is the floor under a stack with a
//! rate limit. And the rate limit's own start, alone and while a second thread starts
//! through the same limit, as two workers do: the compare-and-swap on the line both write
//! is the rest of what that stack costs over one without the limit.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use brigade_benches::{BenchJob, Work};
use brigade_core::JobId;
use brigade_core::hooks::{Layers, Middleware, QueueState, RunOutcome, RunReport};
use criterion::{Criterion, criterion_group, criterion_main};

/// A layer that keeps every default: the price of the call itself.
struct PassThrough;

impl Middleware<BenchJob, Infallible> for PassThrough {
    fn name(&self) -> &'static str {
        "pass-through"
    }
}

fn hook_pass(layers: &Layers<BenchJob, Infallible>, job: &BenchJob) {
    let queue = QueueState {
        len: 10,
        capacity: 1024,
    };
    let now = Instant::now();
    let _ = black_box(layers.admit(job, queue));
    let _ = black_box(layers.before_start(job, now));
    let report = RunReport {
        id: JobId::new(1),
        outcome: RunOutcome::<Infallible>::Succeeded,
        attempt: 1,
        started: now,
        first_failure: None,
    };
    let _ = black_box(layers.after_run(job, &report, now));
    layers.release(job);
}

fn hooks(c: &mut Criterion) {
    let job = BenchJob::new(Work::Noop, 1);
    let mut group = c.benchmark_group("hook_pass");
    group.bench_function("clock_read", |b| b.iter(|| black_box(Instant::now())));
    let empty = Layers::<BenchJob, Infallible>::new();
    group.bench_function("no_layers", |b| {
        b.iter(|| hook_pass(&empty, black_box(&job)))
    });
    let three = Layers::new()
        .with(PassThrough)
        .with(PassThrough)
        .with(PassThrough);
    group.bench_function("three_pass_through_layers", |b| {
        b.iter(|| hook_pass(&three, black_box(&job)))
    });
    let stack = brigade_benches::middleware_stack()
        .into_iter()
        .fold(Layers::new(), Layers::with_shared);
    group.bench_function("retry_rate_limit_backpressure", |b| {
        b.iter(|| hook_pass(&stack, black_box(&job)))
    });
    group.finish();
}

fn rate_limit(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit");
    let limit = brigade_benches::unbiting_rate_limit();
    group.bench_function("start_alone", |b| {
        b.iter(|| black_box(limit.try_acquire(Instant::now())))
    });
    let limit = brigade_benches::unbiting_rate_limit();
    group.bench_function("start_beside_a_second_thread", |b| {
        b.iter_custom(|iters| {
            let stop = AtomicBool::new(false);
            thread::scope(|scope| {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = black_box(limit.try_acquire(Instant::now()));
                    }
                });
                let started = Instant::now();
                for _ in 0..iters {
                    let _ = black_box(limit.try_acquire(Instant::now()));
                }
                let elapsed = started.elapsed();
                stop.store(true, Ordering::Relaxed);
                elapsed
            })
        });
    });
    group.finish();
}

criterion_group!(benches, hooks, rate_limit);
criterion_main!(benches);
