use std::mem::size_of;

use brigade_thread::ThreadPool;

use crate::stopwatch;
use crate::subject::fill;
use crate::subjects::middleware_stack::Stack;
use crate::{Batch, BenchJob, Held, Run, Subject, Work, Workload};

/// brigade's OS-thread pool, typed on [`BenchJob`] (no box per job), results through the
/// handles `submit` returns; with a [`Stack`], through its layers.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrigadeThread {
    /// The layers its jobs run through.
    pub stack: Stack,
}

impl BrigadeThread {
    pub(super) fn pool(self, workers: usize, capacity: usize) -> ThreadPool<BenchJob> {
        let mut builder = ThreadPool::<BenchJob>::builder()
            .workers(workers)
            .queue_capacity(capacity);
        for layer in self.stack.layers() {
            builder = builder.layer_shared(layer);
        }
        builder.build().expect("valid pool configuration")
    }
}

impl Subject for BrigadeThread {
    fn name(&self) -> &'static str {
        match self.stack {
            Stack::Bare => "brigade-thread",
            Stack::Full => "brigade-thread+mw",
            Stack::WithoutRateLimit => "brigade-thread+mw-no-rate",
        }
    }

    fn run(&self, batch: &Batch) -> Run {
        submit_then_join(&self.pool(batch.workers, batch.queue_capacity), batch)
    }

    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        let pool = self.pool(batch.workers, batch.jobs + batch.workers);
        let mut handles = Vec::with_capacity(batch.jobs + batch.workers);
        fill(batch, probe, |work, input| {
            handles.push(
                pool.submit(BenchJob::new(work, input))
                    .expect("pool accepts"),
            );
        });
        let mut collected = 0;
        for handle in handles {
            handle.join().expect("job ran");
            collected += 1;
        }
        let _ = pool.shutdown();
        Some(collected)
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        let pool = self.pool(workers, workers);
        let handles: Vec<_> = (0..workers as u64)
            .map(|input| {
                pool.submit(BenchJob::new(Work::Noop, input))
                    .expect("pool accepts")
            })
            .collect();
        for handle in handles {
            handle.join().expect("job ran");
        }
        during();
        let _ = pool.shutdown();
        true
    }

    fn job_size(&self) -> usize {
        size_of::<BenchJob>()
    }

    fn supports(&self, workload: Workload) -> bool {
        self.stack == Stack::Bare || workload == Workload::Middleware
    }
}

/// brigade's OS-thread pool through `ThreadPool::map`: results in submission order with at
/// most a queue's worth (plus one per worker) in flight, so a million jobs never hold a
/// million handles at once. The bulk API next to [`BrigadeThread`]'s submit-then-join.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrigadeThreadMap;

impl Subject for BrigadeThreadMap {
    fn name(&self) -> &'static str {
        "brigade-thread/map"
    }

    fn run(&self, batch: &Batch) -> Run {
        let pool = BrigadeThread::default().pool(batch.workers, batch.queue_capacity);
        let mut outputs = Vec::with_capacity(batch.jobs);
        let work = batch.work;
        let (elapsed, ()) = stopwatch(|| {
            let jobs = batch.inputs().map(|input| BenchJob::new(work, input));
            let in_flight = batch.queue_capacity + batch.workers;
            outputs.extend(
                pool.map(jobs, in_flight)
                    .map(|result| result.expect("pool accepts, job runs")),
            );
        });
        let _ = pool.shutdown();
        Run { elapsed, outputs }
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        BrigadeThread::default().idle(workers, during)
    }

    fn job_size(&self) -> usize {
        size_of::<BenchJob>()
    }

    fn supports(&self, workload: Workload) -> bool {
        matches!(
            workload,
            Workload::Noop | Workload::Spin | Workload::Cpu | Workload::Sleep
        )
    }
}

/// The submit-then-join run on `pool`: every job submitted (waiting while the queue is
/// full), then every handle joined, timed; the pool shut down after.
pub(crate) fn submit_then_join(pool: &ThreadPool<BenchJob>, batch: &Batch) -> Run {
    let mut handles = Vec::with_capacity(batch.jobs);
    let mut outputs = Vec::with_capacity(batch.jobs);
    let (elapsed, ()) = stopwatch(|| {
        for input in batch.inputs() {
            let job = BenchJob::new(batch.work, input);
            handles.push(pool.submit(job).expect("pool accepts"));
        }
        outputs.extend(
            handles
                .drain(..)
                .map(|handle| handle.join().expect("job ran")),
        );
    });
    let _ = pool.shutdown();
    Run { elapsed, outputs }
}
