use std::mem::size_of;

use brigade_thread::ThreadPool;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use crate::subjects::brigade_thread::{BrigadeThread, submit_then_join};
use crate::{Batch, BenchJob, Run, Subject, Workload};

/// [`BrigadeThread`]'s submit-then-join with the pool's metrics recorded by a Prometheus
/// recorder: the pool is built inside [`metrics::with_local_recorder`], so its series (and
/// only its: the other subjects' pools see no recorder) bind to it. What a service pays for
/// `/metrics` on a pool; the recorder is drained between runs, outside the timing, as an
/// exporter's periodic upkeep does.
pub struct BrigadeThreadMetrics {
    recorder: PrometheusRecorder,
}

impl BrigadeThreadMetrics {
    /// A subject with a recorder of its own.
    #[must_use]
    pub fn new() -> Self {
        BrigadeThreadMetrics {
            recorder: PrometheusBuilder::new().build_recorder(),
        }
    }

    fn pool(&self, workers: usize, capacity: usize) -> ThreadPool<BenchJob> {
        metrics::with_local_recorder(&self.recorder, || {
            BrigadeThread::default().pool(workers, capacity)
        })
    }
}

impl Default for BrigadeThreadMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BrigadeThreadMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrigadeThreadMetrics")
            .finish_non_exhaustive()
    }
}

impl Subject for BrigadeThreadMetrics {
    fn name(&self) -> &'static str {
        "brigade-thread+metrics"
    }

    fn run(&self, batch: &Batch) -> Run {
        let run = submit_then_join(&self.pool(batch.workers, batch.queue_capacity), batch);
        // The histograms keep their samples until a render or an upkeep takes them.
        self.recorder.handle().run_upkeep();
        run
    }

    fn idle(&self, workers: usize, during: &mut dyn FnMut()) -> bool {
        let _ = (workers, during);
        false
    }

    fn job_size(&self) -> usize {
        size_of::<BenchJob>()
    }

    fn supports(&self, workload: Workload) -> bool {
        // The metrics target is a noop row; the other rows would say little more.
        workload == Workload::Noop
    }
}
