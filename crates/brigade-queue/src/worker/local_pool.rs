//! The two local pools a worker can run jobs on, behind one trait, so that decoding,
//! limits and the run's end are written once for both.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use brigade_core::{BoxAsyncJob, JobContext, JobHandle, SubmitError};
use brigade_middleware::Retry;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::dispatch::{Dispatch, Prepared, RunEnd, RunMeta, await_run, refused_end, run_end};
use super::fence::Fence;
use crate::{Delivery, Handler};

/// A local pool and the kind of handler it runs.
#[async_trait]
pub(crate) trait LocalPool<T, H>: Send + Sync + 'static {
    /// The handler's error.
    type Error: fmt::Debug + fmt::Display + Send + 'static;

    /// The units of a global concurrency limit `job` holds.
    fn weight(handler: &H, job: &T) -> u32;

    /// Hands the run to the pool, waiting for room in its queue while `fence` lets it.
    async fn start(
        &self,
        handler: Arc<H>,
        job: T,
        payload: Value,
        meta: RunMeta,
        fence: &Fence,
    ) -> Result<JobHandle<(), Self::Error>, Refused>;

    /// Stops the pool: up to `timeout` for what it still runs, then cancels those runs and
    /// waits for them to end (for good, if one ignores its token: the caller bounds it).
    async fn shut_down(self: Arc<Self>, timeout: Duration);
}

/// Why a local pool did not take a run.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The fence stopped the run while it waited for room.
    Stopped,
    /// The pool is shut down.
    Closed,
    /// A local layer refused the job, for this reason.
    Rejected(String),
}

/// Room in the thread pool's queue is looked for this often at first, doubling to
/// [`ROOM_MAX_WAIT`]: a pool given less room than the worker's concurrency has its
/// claimed jobs wait for room, holding their leases, rather than go back and come again.
#[cfg(feature = "thread")]
const ROOM_FIRST_WAIT: Duration = Duration::from_millis(1);
#[cfg(feature = "thread")]
const ROOM_MAX_WAIT: Duration = Duration::from_millis(100);

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
        fence: &Fence,
    ) -> Result<JobHandle<(), H::Error>, Refused> {
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
        // The submit waits for room in the queue.
        tokio::select! {
            biased;
            () = fence.token().cancelled() => Err(Refused::Stopped),
            submitted = self.submit(local) => submitted.map_err(|error| match error {
                SubmitError::Closed(_) => Refused::Closed,
                other => Refused::Rejected(other.to_string()),
            }),
        }
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
        fence: &Fence,
    ) -> Result<JobHandle<(), H::Error>, Refused> {
        use brigade_core::TrySubmitError;

        let mut decoded = Some(job);
        let mut local = brigade_core::BoxJob::new(move |cx: &JobContext| {
            let job = next_job(&mut decoded, &payload);
            let delivery = delivery(&meta, cx.clone());
            match job {
                Some(job) => handler.handle(job, delivery),
                None => panic!("payload of {} stopped decoding", delivery.id()),
            }
        });
        let mut wait = ROOM_FIRST_WAIT;
        loop {
            local = match self.try_submit(local) {
                Ok(handle) => return Ok(handle),
                Err(TrySubmitError::Full(job)) => job,
                Err(TrySubmitError::Closed(_)) => return Err(Refused::Closed),
                Err(other) => return Err(Refused::Rejected(other.to_string())),
            };
            tokio::select! {
                () = fence.token().cancelled() => return Err(Refused::Stopped),
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(ROOM_MAX_WAIT);
        }
    }

    async fn shut_down(self: Arc<Self>, timeout: Duration) {
        // The thread pool's shutdown blocks while its threads finish: on a thread of its
        // own, not the runtime's blocking pool, so a run deaf to its token cannot hold the
        // runtime's own shutdown too.
        let (stopped, on_stop) = tokio::sync::oneshot::channel();
        let stopping = std::thread::Builder::new()
            .name("brigade-worker-pool-stop".into())
            .spawn(move || {
                let _report = self.shutdown_timeout(timeout);
                let _ = stopped.send(());
            });
        if stopping.is_ok() {
            let _ = on_stop.await;
        }
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
        let handle = match pool
            .start(handler, job, payload, meta.clone(), &fence)
            .await
        {
            Ok(handle) => handle,
            Err(Refused::Stopped) => return RunEnd::unstarted(&fence),
            // Only the worker's shutdown closes its pool, after its last run.
            Err(Refused::Closed) => return RunEnd::Release,
            Err(Refused::Rejected(reason)) => return refused_end(&reason, &retry, &meta),
        };
        let result = await_run(handle, &fence).await;
        run_end(result, &fence, &retry, &meta)
    }
}
