use std::convert::Infallible;
use std::mem::size_of;
use std::sync::OnceLock;

use brigade_core::{Job, JobContext};
use brigade_thread::ThreadPool;
use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::subject::fill;
use crate::subjects::brigade_thread::BrigadeThread;
use crate::{Batch, BenchJob, Held, Run, Subject, Workload, stopwatch};

/// brigade's OS-thread pool fed with `execute` (fire and forget, no handle): each job sends
/// its output on a crossbeam results channel that the caller drains, as the crossbeam pool's
/// workers do. Next to [`BrigadeThread`], it shows what the handle costs.
///
/// The jobs refer to the channel as the peer's workers refer to theirs, without a reference
/// count of their own: a `Sender` cloned into each job would add and subtract on a line the
/// submitter and every worker share, once per job, which the peer never pays (it was a tenth
/// of this subject's profile). Every run of the subject uses the one process-wide channel
/// (`results`) and takes exactly its own jobs' outputs from it.
///
/// Its memory row queues plain [`BenchJob`]s and counts completions from the pool's stats,
/// so it shows what the queue alone costs per job: a results sender carried by each job
/// would be the caller's, not the pool's.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrigadeThreadExecute;

/// A [`BenchJob`] that reports its output on a channel instead of through a handle.
#[derive(Debug)]
struct ChannelJob {
    job: BenchJob,
    results: &'static Sender<u64>,
}

/// The results channel of every run of this subject.
fn results() -> &'static (Sender<u64>, Receiver<u64>) {
    static RESULTS: OnceLock<(Sender<u64>, Receiver<u64>)> = OnceLock::new();
    RESULTS.get_or_init(unbounded)
}

impl Job for ChannelJob {
    type Output = ();
    type Error = Infallible;

    #[inline]
    fn run(&mut self, _cx: &JobContext) -> Result<(), Infallible> {
        // The caller stops draining only after every result arrived: a failed send cannot
        // lose one that is still awaited.
        let _ = self.results.send(self.job.work.run(self.job.input));
        Ok(())
    }
}

impl Subject for BrigadeThreadExecute {
    fn name(&self) -> &'static str {
        "brigade-thread/execute"
    }

    fn run(&self, batch: &Batch) -> Run {
        let pool = ThreadPool::<ChannelJob>::builder()
            .workers(batch.workers)
            .queue_capacity(batch.queue_capacity)
            .build()
            .expect("valid pool configuration");
        let (results_tx, results) = results();
        let mut outputs = Vec::with_capacity(batch.jobs);
        let work = batch.work;
        let (elapsed, ()) = stopwatch(|| {
            for input in batch.inputs() {
                let job = ChannelJob {
                    job: BenchJob::new(work, input),
                    results: results_tx,
                };
                pool.execute(job).expect("pool accepts");
            }
            outputs.extend(results.iter().take(batch.jobs));
        });
        let _ = pool.shutdown();
        Run { elapsed, outputs }
    }

    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        let pool = BrigadeThread::default().pool(batch.workers, batch.jobs + batch.workers);
        fill(batch, probe, |work, input| {
            pool.execute(BenchJob::new(work, input))
                .expect("pool accepts");
        });
        pool.wait_idle();
        let completed = pool.stats().completed;
        let _ = pool.shutdown();
        usize::try_from(completed).ok()
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        BrigadeThread::default().idle(workers, during)
    }

    fn job_size(&self) -> usize {
        size_of::<BenchJob>()
    }

    fn supports(&self, workload: Workload) -> bool {
        // The idle pool is brigade-thread's own: the same row twice would say nothing new.
        !matches!(workload, Workload::Middleware | Workload::Idle)
    }
}
