use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use brigade_core::{BoxJob, JobContext};
use brigade_middleware::Retry;
use brigade_thread::BoxPool;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::dispatch::{Dispatch, Prepared, RunEnd, RunMeta, await_run, run_end};
use super::fence::Fence;
use crate::{BlockingHandler, Delivery};

/// A [`BlockingHandler`] running on a thread pool.
pub(crate) struct OnThread<T, H: BlockingHandler<T>> {
    pub(crate) handler: Arc<H>,
    pub(crate) pool: Arc<BoxPool<(), H::Error>>,
    pub(crate) retry: Arc<Retry<H::Error>>,
    pub(crate) job: PhantomData<fn() -> T>,
}

struct Ready<T, H: BlockingHandler<T>> {
    job: T,
    payload: Value,
    meta: RunMeta,
    weight: u32,
    handler: Arc<H>,
    pool: Arc<BoxPool<(), H::Error>>,
    retry: Arc<Retry<H::Error>>,
}

#[async_trait]
impl<T, H> Dispatch for OnThread<T, H>
where
    T: DeserializeOwned + Send + 'static,
    H: BlockingHandler<T>,
    H::Error: fmt::Display,
{
    fn prepare(&self, payload: Value, meta: RunMeta) -> Result<Box<dyn Prepared>, String> {
        let job = T::deserialize(&payload)
            .map_err(|error| format!("payload does not decode: {error}"))?;
        Ok(Box::new(Ready {
            weight: self.handler.weight(&job),
            job,
            payload,
            meta,
            handler: Arc::clone(&self.handler),
            pool: Arc::clone(&self.pool),
            retry: Arc::clone(&self.retry),
        }))
    }

    async fn shutdown(&self, timeout: Duration) {
        let pool = Arc::clone(&self.pool);
        // The thread pool's shutdown blocks while its threads finish.
        let _joined = tokio::task::spawn_blocking(move || pool.shutdown_timeout(timeout)).await;
    }
}

#[async_trait]
impl<T, H> Prepared for Ready<T, H>
where
    T: DeserializeOwned + Send + 'static,
    H: BlockingHandler<T>,
    H::Error: fmt::Display,
{
    fn weight(&self) -> u32 {
        self.weight
    }

    async fn start(self: Box<Self>, fence: Arc<Fence>) -> RunEnd {
        let Ready {
            job,
            payload,
            meta,
            handler,
            pool,
            retry,
            ..
        } = *self;
        let mut job = Some(job);
        let run_meta = meta.clone();
        let local = BoxJob::new(move |cx: &JobContext| {
            // A local layer may run the job again; the payload decoded once, so it decodes again.
            let job = job.take().or_else(|| T::deserialize(&payload).ok());
            let delivery = Delivery::new(
                run_meta.id,
                Arc::clone(&run_meta.queue),
                run_meta.attempt,
                run_meta.max_attempts,
                run_meta.enqueued_at,
                cx.clone(),
            );
            match job {
                Some(job) => handler.handle(job, delivery),
                None => panic!("payload of {} stopped decoding", delivery.id()),
            }
        });
        // The worker claims no more than the pool's workers, so its queue has room.
        let handle = match pool.try_submit(local) {
            Ok(handle) => handle,
            Err(_refused) => return RunEnd::Release,
        };
        let result = await_run(handle, &fence).await;
        run_end(result, &fence, &retry, &meta)
    }
}
