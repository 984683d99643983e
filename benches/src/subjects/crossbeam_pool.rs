use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::stopwatch;
use crate::subject::{PEER_PAYLOAD, fill};
use crate::{Batch, Held, Run, Subject, Work};

/// The seeds' Go pool in Rust: a bounded jobs channel, a results channel, N workers ranging
/// over the jobs, and `close(jobs)` to finish. The floor any pool is measured against.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossbeamPool;

struct GoPool {
    jobs: Sender<(Work, u64)>,
    results: Receiver<u64>,
    workers: Vec<JoinHandle<()>>,
}

impl GoPool {
    fn start(workers: usize, capacity: usize) -> Self {
        let (jobs, job_queue) = bounded::<(Work, u64)>(capacity);
        let (result_sender, results) = unbounded();
        let workers = (0..workers)
            .map(|_| {
                let job_queue = job_queue.clone();
                let result_sender = result_sender.clone();
                thread::spawn(move || {
                    for (work, input) in job_queue {
                        let _ = result_sender.send(work.run(input));
                    }
                })
            })
            .collect();
        GoPool {
            jobs,
            results,
            workers,
        }
    }

    /// `close(jobs)`, then range over the results until the workers are gone.
    fn finish(self, outputs: &mut Vec<u64>) {
        drop(self.jobs);
        outputs.extend(self.results.iter());
        for worker in self.workers {
            worker.join().expect("worker panicked");
        }
    }
}

impl Subject for CrossbeamPool {
    fn name(&self) -> &'static str {
        "crossbeam-pool"
    }

    fn run(&self, batch: &Batch) -> Run {
        let pool = GoPool::start(batch.workers, batch.queue_capacity);
        let mut outputs = Vec::with_capacity(batch.jobs);
        let (elapsed, ()) = stopwatch(|| {
            for input in batch.inputs() {
                pool.jobs.send((batch.work, input)).expect("workers alive");
            }
            pool.finish(&mut outputs);
        });
        Run { elapsed, outputs }
    }

    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        let pool = GoPool::start(batch.workers, batch.jobs + batch.workers);
        fill(batch, probe, |work, input| {
            pool.jobs.send((work, input)).expect("workers alive");
        });
        let mut outputs = Vec::new();
        pool.finish(&mut outputs);
        Some(outputs.len())
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        let pool = GoPool::start(workers, workers);
        for input in 0..workers as u64 {
            pool.jobs.send((Work::Noop, input)).expect("workers alive");
        }
        for _ in 0..workers {
            pool.results.recv().expect("workers alive");
        }
        during();
        pool.finish(&mut Vec::new());
        true
    }

    fn job_size(&self) -> usize {
        PEER_PAYLOAD
    }
}
