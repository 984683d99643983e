use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::Runtime;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use crate::subject::{PEER_PAYLOAD, fill};
use crate::subjects::tokio_joinset::runtime;
use crate::{Batch, Held, Run, Subject, Work};

/// The seeds' Go pool written on tokio: a bounded `mpsc` channel of jobs, N worker tasks
/// taking turns on its receiver (tokio's mpsc has one receiver, so they share it behind a
/// `tokio::sync::Mutex`), an unbounded results channel, and dropping the jobs sender (Go's
/// `close(jobs)`) to finish. The async floor brigade-tokio is measured against, on the same
/// runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioMpscPool;

struct AsyncGoPool {
    jobs: mpsc::Sender<(Work, u64)>,
    results: mpsc::UnboundedReceiver<u64>,
    workers: Vec<JoinHandle<()>>,
}

impl AsyncGoPool {
    fn start(runtime: &Runtime, workers: usize, capacity: usize) -> Self {
        let (jobs, job_queue) = mpsc::channel::<(Work, u64)>(capacity);
        let job_queue = Arc::new(Mutex::new(job_queue));
        let (result_sender, results) = mpsc::unbounded_channel();
        let workers = (0..workers)
            .map(|_| {
                let job_queue = Arc::clone(&job_queue);
                let result_sender = result_sender.clone();
                runtime.spawn(async move {
                    loop {
                        // The lock is held while waiting for the next job, never while
                        // running one: the other workers wait their turn to receive.
                        let next = job_queue.lock().await.recv().await;
                        let Some((work, input)) = next else { break };
                        let _ = result_sender.send(work.run_async(input).await);
                    }
                })
            })
            .collect();
        AsyncGoPool {
            jobs,
            results,
            workers,
        }
    }

    /// `close(jobs)`, then range over the results until the workers are gone.
    async fn finish(mut self, outputs: &mut Vec<u64>) {
        drop(self.jobs);
        while let Some(output) = self.results.recv().await {
            outputs.push(output);
        }
        for worker in self.workers {
            worker.await.expect("worker panicked");
        }
    }
}

impl Subject for TokioMpscPool {
    fn name(&self) -> &'static str {
        "tokio-mpsc-pool"
    }

    fn run(&self, batch: &Batch) -> Run {
        let runtime = runtime(batch.threads);
        let pool = AsyncGoPool::start(&runtime, batch.workers, batch.queue_capacity);
        let work = batch.work;
        runtime.block_on(async {
            let mut outputs = Vec::with_capacity(batch.jobs);
            let started = Instant::now();
            for input in batch.inputs() {
                pool.jobs.send((work, input)).await.expect("workers alive");
            }
            pool.finish(&mut outputs).await;
            Run {
                elapsed: started.elapsed(),
                outputs,
            }
        })
    }

    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        // As for brigade-tokio: gate jobs block their runtime threads, so the runtime gets
        // one thread per worker and submissions come from this (non-runtime) thread.
        let runtime = runtime(batch.workers);
        let pool = AsyncGoPool::start(&runtime, batch.workers, batch.jobs + batch.workers);
        fill(batch, probe, |work, input| {
            pool.jobs
                .blocking_send((work, input))
                .expect("workers alive");
        });
        let mut outputs = Vec::new();
        runtime.block_on(pool.finish(&mut outputs));
        Some(outputs.len())
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        let runtime = runtime(workers);
        let mut pool = AsyncGoPool::start(&runtime, workers, workers);
        runtime.block_on(async {
            for input in 0..workers as u64 {
                pool.jobs
                    .send((Work::Noop, input))
                    .await
                    .expect("workers alive");
            }
            for _ in 0..workers {
                pool.results.recv().await.expect("workers alive");
            }
        });
        during();
        runtime.block_on(pool.finish(&mut Vec::new()));
        true
    }

    fn job_size(&self) -> usize {
        PEER_PAYLOAD
    }
}
