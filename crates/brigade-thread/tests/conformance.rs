//! The conformance kit of `brigade-core`, run against the thread backend.

use brigade_core::ConfigError;
use brigade_core::hooks::Layers;
use brigade_core::testkit::{Backend, KitConfig, KitJob};
use brigade_thread::ThreadPool;

#[derive(Default)]
struct ThreadBackend;

impl Backend for ThreadBackend {
    type Job = KitJob;
    type Pool = ThreadPool<KitJob>;

    fn build(
        &self,
        config: KitConfig,
        layers: Layers<KitJob, String>,
    ) -> Result<Self::Pool, ConfigError> {
        ThreadPool::builder()
            .name("conformance")
            .min_workers(config.min_workers)
            .max_workers(config.max_workers)
            .queue_capacity(config.queue_capacity)
            .keep_alive(config.keep_alive)
            .layers(layers)
            .build()
    }

    fn job(&self, spec: KitJob) -> KitJob {
        spec
    }

    fn spec<'a>(&self, job: &'a KitJob) -> &'a KitJob {
        job
    }
}

brigade_core::conformance_tests!(ThreadBackend);
