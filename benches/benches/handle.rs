//! What one job's result slot costs with no pool around it: core's `JobHandle` created,
//! completed and joined on one thread, against a one-slot crossbeam channel doing the same
//! hand-over. Every submitted job pays this once, whatever the backend.

use std::convert::Infallible;
use std::hint::black_box;

use brigade_core::backend::job_handle;
use brigade_core::{CancellationToken, JobId};
use criterion::{Criterion, criterion_group, criterion_main};

fn handle(c: &mut Criterion) {
    let mut group = c.benchmark_group("result_slot");
    let pool_token = CancellationToken::new();
    group.bench_function("job_handle new + complete + join", |b| {
        b.iter(|| {
            let (handle, completer) = job_handle::<u64, Infallible>(JobId::new(1), &pool_token);
            completer.complete(Ok(black_box(7)));
            handle.join().expect("completed")
        });
    });
    group.bench_function("crossbeam bounded(1) new + send + recv", |b| {
        b.iter(|| {
            let (sender, receiver) = crossbeam_channel::bounded::<u64>(1);
            sender.send(black_box(7)).expect("room");
            receiver.recv().expect("sent")
        });
    });
    group.finish();
}

criterion_group!(benches, handle);
criterion_main!(benches);
