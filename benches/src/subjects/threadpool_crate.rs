use std::sync::mpsc;

use crate::stopwatch;
use crate::subject::{PEER_PAYLOAD, fill};
use crate::{Batch, Held, Run, Subject, Work};

/// The `threadpool` crate: `execute` a boxed closure that sends its result on an mpsc
/// channel, as its documentation shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadpoolCrate;

impl Subject for ThreadpoolCrate {
    fn name(&self) -> &'static str {
        "threadpool"
    }

    fn run(&self, batch: &Batch) -> Run {
        let pool = threadpool::ThreadPool::new(batch.workers);
        let (results_tx, results) = mpsc::channel();
        let mut outputs = Vec::with_capacity(batch.jobs);
        let work = batch.work;
        let (elapsed, ()) = stopwatch(|| {
            for input in batch.inputs() {
                let results_tx = results_tx.clone();
                pool.execute(move || {
                    let _ = results_tx.send(work.run(input));
                });
            }
            outputs.extend(results.iter().take(batch.jobs));
        });
        pool.join();
        Run { elapsed, outputs }
    }

    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        let pool = threadpool::ThreadPool::new(batch.workers);
        let (results_tx, results) = mpsc::channel();
        let queued = fill(batch, probe, |work, input| {
            let results_tx = results_tx.clone();
            pool.execute(move || {
                let _ = results_tx.send(work.run(input));
            });
        });
        let collected = results.iter().take(queued).count();
        pool.join();
        Some(collected)
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        let pool = threadpool::ThreadPool::new(workers);
        for input in 0..workers as u64 {
            pool.execute(move || {
                std::hint::black_box(Work::Noop.run(input));
            });
        }
        pool.join();
        during();
        true
    }

    fn job_size(&self) -> usize {
        PEER_PAYLOAD
    }
}
