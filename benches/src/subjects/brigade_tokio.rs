use std::mem::size_of;
use std::time::Instant;

use brigade_tokio::TokioPool;
use futures::{StreamExt, stream};

use crate::subject::fill;
use crate::subjects::middleware_stack::Stack;
use crate::subjects::tokio_joinset::runtime;
use crate::{Batch, BenchJob, Held, Run, Subject, Work, Workload};

/// brigade's async pool on a multi-thread tokio runtime (one thread per core), typed on
/// [`BenchJob`], results by awaiting the handles `submit` returns; with a [`Stack`], through
/// its layers.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrigadeTokio {
    /// The layers its jobs run through.
    pub stack: Stack,
}

impl BrigadeTokio {
    pub(crate) fn pool(
        self,
        runtime: &tokio::runtime::Runtime,
        workers: usize,
        capacity: usize,
    ) -> TokioPool<BenchJob> {
        let mut builder = TokioPool::<BenchJob>::builder()
            .runtime_handle(runtime.handle().clone())
            .workers(workers)
            .queue_capacity(capacity);
        for layer in self.stack.layers() {
            builder = builder.layer_shared(layer);
        }
        builder.build().expect("valid pool configuration")
    }
}

impl Subject for BrigadeTokio {
    fn name(&self) -> &'static str {
        match self.stack {
            Stack::Bare => "brigade-tokio",
            Stack::Full => "brigade-tokio+mw",
            Stack::WithoutRateLimit => "brigade-tokio+mw-no-rate",
        }
    }

    fn run(&self, batch: &Batch) -> Run {
        let runtime = runtime(batch.threads);
        let pool = self.pool(&runtime, batch.workers, batch.queue_capacity);
        let run = runtime.block_on(async {
            let mut handles = Vec::with_capacity(batch.jobs);
            let mut outputs = Vec::with_capacity(batch.jobs);
            let started = Instant::now();
            for input in batch.inputs() {
                let job = BenchJob::new(batch.work, input);
                handles.push(pool.submit(job).await.expect("pool accepts"));
            }
            for handle in handles {
                outputs.push(handle.await.expect("job ran"));
            }
            let elapsed = started.elapsed();
            let _ = pool.shutdown().await;
            Run { elapsed, outputs }
        });
        drop(pool);
        run
    }

    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        // Gate jobs block their runtime threads, so the runtime gets one thread per worker
        // and submissions come from this (non-runtime) thread.
        let runtime = runtime(batch.workers);
        let pool = self.pool(&runtime, batch.workers, batch.jobs + batch.workers);
        let mut handles = Vec::with_capacity(batch.jobs + batch.workers);
        fill(batch, probe, |work, input| {
            let job = BenchJob::new(work, input);
            handles.push(pool.try_submit(job).expect("room in the queue"));
        });
        let collected = runtime.block_on(async {
            let mut collected = 0;
            for handle in handles {
                handle.await.expect("job ran");
                collected += 1;
            }
            let _ = pool.shutdown().await;
            collected
        });
        drop(pool);
        Some(collected)
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        let runtime = runtime(workers);
        let pool = self.pool(&runtime, workers, workers);
        runtime.block_on(async {
            for input in 0..workers as u64 {
                let handle = pool
                    .submit(BenchJob::new(Work::Noop, input))
                    .await
                    .expect("pool accepts");
                handle.await.expect("job ran");
            }
        });
        during();
        runtime.block_on(async {
            let _ = pool.shutdown().await;
        });
        drop(pool);
        true
    }

    fn job_size(&self) -> usize {
        size_of::<BenchJob>()
    }

    fn supports(&self, workload: Workload) -> bool {
        self.stack == Stack::Bare || workload == Workload::Middleware
    }
}

/// brigade's async pool through `TokioPool::map`, the bulk API: a stream of jobs in, results
/// out in input order, at most a queue's worth (plus one per worker) in flight.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrigadeTokioMap;

impl Subject for BrigadeTokioMap {
    fn name(&self) -> &'static str {
        "brigade-tokio/map"
    }

    fn run(&self, batch: &Batch) -> Run {
        let runtime = runtime(batch.threads);
        let pool = BrigadeTokio::default().pool(&runtime, batch.workers, batch.queue_capacity);
        let work = batch.work;
        let run = runtime.block_on(async {
            let started = Instant::now();
            let jobs = stream::iter(batch.inputs().map(|input| BenchJob::new(work, input)));
            let outputs: Vec<u64> = pool
                .map(jobs, batch.queue_capacity + batch.workers)
                .map(|result| result.expect("pool accepts, job runs"))
                .collect()
                .await;
            let elapsed = started.elapsed();
            let _ = pool.shutdown().await;
            Run { elapsed, outputs }
        });
        drop(pool);
        run
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        BrigadeTokio::default().idle(workers, during)
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
