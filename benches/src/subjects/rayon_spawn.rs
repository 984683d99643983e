use std::sync::mpsc;

use crate::stopwatch;
use crate::subject::{PEER_PAYLOAD, fill};
use crate::{Batch, Held, Run, Subject, Work};

/// A rayon `ThreadPool` used as a job pool: `spawn` per job, results over an mpsc channel.
/// (rayon is built for fork-join data parallelism; `spawn` is how users queue independent
/// jobs on it.)
#[derive(Clone, Copy, Debug, Default)]
pub struct RayonSpawn;

fn pool(workers: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("rayon pool")
}

impl Subject for RayonSpawn {
    fn name(&self) -> &'static str {
        "rayon-spawn"
    }

    fn run(&self, batch: &Batch) -> Run {
        let pool = pool(batch.workers);
        let (results_tx, results) = mpsc::channel();
        let mut outputs = Vec::with_capacity(batch.jobs);
        let work = batch.work;
        let (elapsed, ()) = stopwatch(|| {
            for input in batch.inputs() {
                let results_tx = results_tx.clone();
                pool.spawn(move || {
                    let _ = results_tx.send(work.run(input));
                });
            }
            outputs.extend(results.iter().take(batch.jobs));
        });
        Run { elapsed, outputs }
    }

    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        let pool = pool(batch.workers);
        let (results_tx, results) = mpsc::channel();
        let queued = fill(batch, probe, |work, input| {
            let results_tx = results_tx.clone();
            pool.spawn(move || {
                let _ = results_tx.send(work.run(input));
            });
        });
        Some(results.iter().take(queued).count())
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        let pool = pool(workers);
        let (done_tx, done) = mpsc::channel();
        for input in 0..workers as u64 {
            let done_tx = done_tx.clone();
            pool.spawn(move || {
                let _ = done_tx.send(Work::Noop.run(input));
            });
        }
        done.iter().take(workers).for_each(drop);
        during();
        true
    }

    fn job_size(&self) -> usize {
        PEER_PAYLOAD
    }
}
