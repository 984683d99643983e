use std::time::Instant;

use futures::StreamExt;
use futures::stream;

use crate::subject::PEER_PAYLOAD;
use crate::subjects::tokio_joinset::runtime;
use crate::{Batch, Run, Subject, Workload};

/// `futures::StreamExt::buffer_unordered(N)`: a stream of job futures, at most N in flight,
/// results in completion order. It is one task: concurrency without parallelism, which is
/// why users pick it for I/O-bound fan-out.
#[derive(Clone, Copy, Debug, Default)]
pub struct FuturesBuffered;

impl Subject for FuturesBuffered {
    fn name(&self) -> &'static str {
        "futures-buffered"
    }

    fn run(&self, batch: &Batch) -> Run {
        let runtime = runtime(batch.threads);
        let work = batch.work;
        runtime.block_on(async {
            let started = Instant::now();
            let outputs: Vec<u64> = stream::iter(batch.inputs())
                .map(|input| work.run_async(input))
                .buffer_unordered(batch.workers)
                .collect()
                .await;
            Run {
                elapsed: started.elapsed(),
                outputs,
            }
        })
    }

    fn idle(&self, _workers: usize, _during: &mut dyn FnMut()) -> bool {
        false
    }

    fn job_size(&self) -> usize {
        PEER_PAYLOAD
    }

    fn supports(&self, workload: Workload) -> bool {
        // No queue to fill, nothing running when idle, and a job starts in the same poll
        // that pulls it from the stream, so a submit → start delay means nothing here.
        matches!(
            workload,
            Workload::Noop | Workload::Spin | Workload::Cpu | Workload::Sleep
        )
    }
}
