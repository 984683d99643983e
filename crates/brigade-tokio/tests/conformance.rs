//! The conformance kit of brigade-core, run against the tokio backend through its blocking
//! `Executor` methods.

use brigade_core::hooks::Layers;
use brigade_core::testkit::{Backend, KitConfig, KitJob};
use brigade_core::{AsyncJob, ConfigError, JobContext};
use brigade_tokio::TokioPool;

/// A kit job run the async way: sleeps on tokio's timer, waits on its token with `.await`.
struct AsyncKitJob(KitJob);

impl AsyncJob for AsyncKitJob {
    type Output = u64;
    type Error = String;

    async fn run(&mut self, cx: &JobContext) -> Result<u64, String> {
        self.0.run_async(cx, tokio::time::sleep).await
    }
}

#[derive(Default)]
struct TokioBackend;

impl Backend for TokioBackend {
    type Job = AsyncKitJob;
    type Pool = TokioPool<AsyncKitJob>;

    fn build(
        &self,
        config: KitConfig,
        layers: Layers<AsyncKitJob, String>,
    ) -> Result<Self::Pool, ConfigError> {
        TokioPool::builder()
            .name("kit")
            .own_runtime(2)
            .min_workers(config.min_workers)
            .max_workers(config.max_workers)
            .queue_capacity(config.queue_capacity)
            .keep_alive(config.keep_alive)
            .layers(layers)
            .build()
    }

    fn job(&self, spec: KitJob) -> AsyncKitJob {
        AsyncKitJob(spec)
    }

    fn spec<'a>(&self, job: &'a AsyncKitJob) -> &'a KitJob {
        &job.0
    }
}

brigade_core::conformance_tests!(TokioBackend);
