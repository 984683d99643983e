use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::subject::PEER_PAYLOAD;
use crate::{Batch, Run, Subject, Work, Workload};

/// tokio's idiom for bounded concurrency: a `Semaphore` of N permits acquired before each
/// `JoinSet::spawn`, the permit dropped when the task ends, results from `join_next`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioJoinSet;

/// A multi-thread runtime with one worker per core, as `#[tokio::main]` builds.
pub(crate) fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_time()
        .build()
        .expect("tokio runtime")
}

impl Subject for TokioJoinSet {
    fn name(&self) -> &'static str {
        "tokio-joinset"
    }

    fn run(&self, batch: &Batch) -> Run {
        let runtime = runtime(batch.threads);
        let work = batch.work;
        runtime.block_on(async {
            let permits = Arc::new(Semaphore::new(batch.workers));
            let mut set = JoinSet::new();
            let mut outputs = Vec::with_capacity(batch.jobs);
            let started = Instant::now();
            for input in batch.inputs() {
                let permit = Arc::clone(&permits)
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                set.spawn(async move {
                    let output = work.run_async(input).await;
                    drop(permit);
                    output
                });
                // Reap what finished so the set does not hold a million completed tasks.
                while let Some(done) = set.try_join_next() {
                    outputs.push(done.expect("task panicked"));
                }
            }
            while let Some(done) = set.join_next().await {
                outputs.push(done.expect("task panicked"));
            }
            Run {
                elapsed: started.elapsed(),
                outputs,
            }
        })
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        let runtime = runtime(workers);
        runtime.block_on(async {
            let mut set = JoinSet::new();
            for input in 0..workers as u64 {
                set.spawn(async move { Work::Noop.run(input) });
            }
            while set.join_next().await.is_some() {}
        });
        during();
        true
    }

    fn job_size(&self) -> usize {
        PEER_PAYLOAD
    }

    fn supports(&self, workload: Workload) -> bool {
        // With the permit taken before the spawn, nothing queues: the producer waits.
        !matches!(workload, Workload::Middleware | Workload::Memory)
    }
}
