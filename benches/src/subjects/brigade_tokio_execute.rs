use std::convert::Infallible;
use std::mem::size_of;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use brigade_core::{AsyncJob, JobContext};
use brigade_tokio::TokioPool;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::subject::fill;
use crate::subjects::brigade_tokio::BrigadeTokio;
use crate::subjects::tokio_joinset::runtime;
use crate::{Batch, BenchJob, Held, Run, Subject, Workload};

/// brigade's async pool fed with `execute` (fire and forget, no handle): each job sends its
/// output on a tokio results channel that the caller drains, as tokio-mpsc-pool's workers
/// do. Next to [`BrigadeTokio`], it shows what the handle costs on tokio.
///
/// As [`BrigadeThreadExecute`](crate::BrigadeThreadExecute)'s, the jobs refer to one
/// process-wide results channel without a reference count of their own, and the memory row
/// queues plain [`BenchJob`]s, counting completions from the pool's stats.
///
/// # Examples
///
/// ```
/// use brigade_benches::{Batch, BrigadeTokioExecute, Subject, Work};
///
/// let batch = Batch::new(100, 2, Work::Noop);
/// let run = BrigadeTokioExecute.run(&batch);
/// batch.check(BrigadeTokioExecute.name(), &run.outputs);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct BrigadeTokioExecute;

#[derive(Debug)]
struct ChannelJob {
    job: BenchJob,
    results: &'static UnboundedSender<u64>,
}

/// The process's one results channel, as brigade-thread/execute's: a job holds a
/// `&'static` sender, so sending its output moves no reference count. A run takes the
/// receiver and puts it back.
type Results = (UnboundedSender<u64>, Mutex<Option<UnboundedReceiver<u64>>>);

fn results() -> &'static Results {
    static RESULTS: OnceLock<Results> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let (sender, receiver) = unbounded_channel();
        (sender, Mutex::new(Some(receiver)))
    })
}

impl AsyncJob for ChannelJob {
    type Output = ();
    type Error = Infallible;

    #[inline]
    async fn run(&mut self, _cx: &JobContext) -> Result<(), Infallible> {
        // The caller stops draining only after every result arrived: a failed send cannot
        // lose one that is still awaited.
        let _ = self
            .results
            .send(self.job.work.run_async(self.job.input).await);
        Ok(())
    }
}

impl Subject for BrigadeTokioExecute {
    fn name(&self) -> &'static str {
        "brigade-tokio/execute"
    }

    fn run(&self, batch: &Batch) -> Run {
        let runtime = runtime(batch.threads);
        let pool = TokioPool::<ChannelJob>::builder()
            .runtime_handle(runtime.handle().clone())
            .workers(batch.workers)
            .queue_capacity(batch.queue_capacity)
            .build()
            .expect("valid pool configuration");
        let (sender, receiver_slot) = results();
        let mut receiver = receiver_slot
            .lock()
            .expect("no run panicked holding the receiver")
            .take()
            .expect("one run at a time");
        let work = batch.work;
        let run = runtime.block_on(async {
            let mut outputs = Vec::with_capacity(batch.jobs);
            let started = Instant::now();
            for input in batch.inputs() {
                let job = ChannelJob {
                    job: BenchJob::new(work, input),
                    results: sender,
                };
                pool.execute(job).await.expect("pool accepts");
            }
            while outputs.len() < batch.jobs {
                outputs.push(receiver.recv().await.expect("the sender is static"));
            }
            let elapsed = started.elapsed();
            let _ = pool.shutdown().await;
            Run { elapsed, outputs }
        });
        drop(pool);
        *receiver_slot
            .lock()
            .expect("no run panicked holding the receiver") = Some(receiver);
        run
    }

    fn hold(&self, batch: &Batch, probe: &mut dyn FnMut(Held)) -> Option<usize> {
        // As for brigade-tokio: gate jobs block their runtime threads, so the runtime gets
        // one thread per worker and submissions come from this (non-runtime) thread.
        let runtime = runtime(batch.workers);
        let pool =
            BrigadeTokio::default().pool(&runtime, batch.workers, batch.jobs + batch.workers);
        fill(batch, probe, |work, input| {
            runtime
                .block_on(pool.execute(BenchJob::new(work, input)))
                .expect("pool accepts");
        });
        let completed = runtime.block_on(async {
            pool.wait_idle().await;
            let completed = pool.stats().completed;
            let _ = pool.shutdown().await;
            completed
        });
        drop(pool);
        usize::try_from(completed).ok()
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        BrigadeTokio::default().idle(workers, during)
    }

    fn job_size(&self) -> usize {
        size_of::<BenchJob>()
    }

    fn supports(&self, workload: Workload) -> bool {
        // The idle pool is brigade-tokio's own: the same row twice would say nothing new.
        !matches!(workload, Workload::Middleware | Workload::Idle)
    }
}
