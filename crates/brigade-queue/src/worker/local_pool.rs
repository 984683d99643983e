//! The two local pools a worker can run jobs on, behind one trait, so that decoding,
//! limits and the run's end are written once for both.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use brigade_core::{BoxAsyncJob, JobContext, JobHandle};
use brigade_middleware::Retry;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::dispatch::{Dispatch, Prepared, RunEnd, RunMeta, await_run, run_end};
use super::fence::Fence;
use crate::{Delivery, Handler};

/// A local pool and the kind of handler it runs.
#[async_trait]
pub(crate) trait LocalPool<T, H>: Send + Sync + 'static {
    /// The handler's error.
    type Error: fmt::Debug + fmt::Display + Send + 'static;

    /// The units of a global concurrency limit `job` holds.
    fn weight(handler: &H, job: &T) -> u32;

    /// Hands the run to the pool; `None` if the pool refused it (it is shutting down).
    async fn start(
        &self,
        handler: Arc<H>,
        job: T,
        payload: Value,
        meta: RunMeta,
    ) -> Option<JobHandle<(), Self::Error>>;

    /// Stops the pool, waiting up to `timeout` for what it still runs.
    async fn shut_down(self: Arc<Self>, timeout: Duration);
}

/// The job to hand the handler on each run: the decoded one first; should a local layer
/// run the job again, the payload decodes again (it decoded once, so it does again).
pub(crate) fn next_job<T: DeserializeOwned>(decoded: &mut Option<T>, payload: &Value) -> Option<T> {
    decoded.take().or_else(|| T::deserialize(payload).ok())
}

/// The context a handler sees for the run `cx` of the claim `meta`.
pub(crate) fn delivery(meta: &RunMeta, cx: JobContext) -> Delivery {
    Delivery::new(
        meta.id,
        Arc::clone(&meta.queue),
        meta.attempt,
        meta.max_attempts,
        meta.enqueued_at,
        cx,
    )
}

#[async_trait]
impl<T, H> LocalPool<T, H> for brigade_tokio::BoxPool<(), H::Error>
where
    T: DeserializeOwned + Send + 'static,
    H: Handler<T>,
{
    type Error = H::Error;

    fn weight(handler: &H, job: &T) -> u32 {
        handler.weight(job)
    }

    async fn start(
        &self,
        handler: Arc<H>,
        job: T,
        payload: Value,
        meta: RunMeta,
    ) -> Option<JobHandle<(), H::Error>> {
        let mut decoded = Some(job);
        let local = BoxAsyncJob::new(move |cx: JobContext| {
            let job = next_job(&mut decoded, &payload);
            let handler = Arc::clone(&handler);
            let delivery = delivery(&meta, cx);
            async move {
                match job {
                    Some(job) => handler.handle(job, delivery).await,
                    None => panic!("payload of {} stopped decoding", delivery.id()),
                }
            }
        });
        self.submit(local).await.ok()
    }

    async fn shut_down(self: Arc<Self>, timeout: Duration) {
        let _report = self.shutdown_timeout(timeout).await;
    }
}

#[cfg(feature = "thread")]
#[async_trait]
impl<T, H> LocalPool<T, H> for brigade_thread::BoxPool<(), H::Error>
where
    T: DeserializeOwned + Send + 'static,
    H: crate::BlockingHandler<T>,
{
    type Error = H::Error;

    fn weight(handler: &H, job: &T) -> u32 {
        handler.weight(job)
    }

    async fn start(
        &self,
        handler: Arc<H>,
        job: T,
        payload: Value,
        meta: RunMeta,
    ) -> Option<JobHandle<(), H::Error>> {
        let mut decoded = Some(job);
        let local = brigade_core::BoxJob::new(move |cx: &JobContext| {
            let job = next_job(&mut decoded, &payload);
            let delivery = delivery(&meta, cx.clone());
            match job {
                Some(job) => handler.handle(job, delivery),
                None => panic!("payload of {} stopped decoding", delivery.id()),
            }
        });
        // The worker claims no more than the pool's workers, so its queue has room.
        self.try_submit(local).ok()
    }

    async fn shut_down(self: Arc<Self>, timeout: Duration) {
        // The thread pool's shutdown blocks while its threads finish.
        let _joined = tokio::task::spawn_blocking(move || self.shutdown_timeout(timeout)).await;
    }
}

/// A handler on its local pool: the [`Dispatch`] every worker runs.
pub(crate) struct OnPool<T, H, P: LocalPool<T, H>> {
    pub(crate) handler: Arc<H>,
    pub(crate) pool: Arc<P>,
    pub(crate) retry: Arc<Retry<P::Error>>,
    pub(crate) job: PhantomData<fn() -> T>,
}

struct Ready<T, H, P: LocalPool<T, H>> {
    job: T,
    payload: Value,
    meta: RunMeta,
    weight: u32,
    handler: Arc<H>,
    pool: Arc<P>,
    retry: Arc<Retry<P::Error>>,
}

#[async_trait]
impl<T, H, P> Dispatch for OnPool<T, H, P>
where
    T: DeserializeOwned + Send + 'static,
    H: Send + Sync + 'static,
    P: LocalPool<T, H>,
{
    fn prepare(&self, payload: Value, meta: RunMeta) -> Result<Box<dyn Prepared>, String> {
        let job = T::deserialize(&payload)
            .map_err(|error| format!("payload does not decode: {error}"))?;
        Ok(Box::new(Ready {
            weight: P::weight(&self.handler, &job),
            job,
            payload,
            meta,
            handler: Arc::clone(&self.handler),
            pool: Arc::clone(&self.pool),
            retry: Arc::clone(&self.retry),
        }))
    }

    async fn shutdown(&self, timeout: Duration) {
        Arc::clone(&self.pool).shut_down(timeout).await;
    }
}

#[async_trait]
impl<T, H, P> Prepared for Ready<T, H, P>
where
    T: DeserializeOwned + Send + 'static,
    H: Send + Sync + 'static,
    P: LocalPool<T, H>,
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
        let Some(handle) = pool.start(handler, job, payload, meta.clone()).await else {
            return RunEnd::Release;
        };
        let result = await_run(handle, &fence).await;
        run_end(result, &fence, &retry, &meta)
    }
}
