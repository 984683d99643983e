//! The throughput workloads (noop, spin, cpu) at a criterion-friendly size, on every subject,
//! through the same `Subject::run` code `cargo xtask bench` uses. Time per batch excludes
//! building and shutting down the pool, as in the xtask.

use std::time::Duration;

use brigade_benches::{Batch, Calibration, SPIN_ROUNDS, Work, Workload, all_subjects};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const JOBS: usize = 10_000;

fn throughput(c: &mut Criterion) {
    let calibration = Calibration::measure();
    let workloads = [
        (Workload::Noop, Work::Noop),
        (
            Workload::Spin,
            Work::Spin {
                rounds: SPIN_ROUNDS,
            },
        ),
        (
            Workload::Cpu,
            Work::Spin {
                rounds: calibration.cpu_rounds,
            },
        ),
    ];
    for (workload, work) in workloads {
        let jobs = if workload == Workload::Cpu {
            JOBS / 10
        } else {
            JOBS
        };
        let batch = Batch::new(jobs, workload.workers(), work);
        let mut group = c.benchmark_group(workload.name());
        group.throughput(Throughput::Elements(jobs as u64));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(2));
        for subject in all_subjects() {
            if !subject.supports(workload) {
                continue;
            }
            group.bench_function(subject.name(), |b| {
                b.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| {
                            let run = subject.run(&batch);
                            batch.check(subject.name(), &run.outputs);
                            run.elapsed
                        })
                        .sum()
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
