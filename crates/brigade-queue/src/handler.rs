use std::fmt;
use std::future::Future;

use async_trait::async_trait;

use crate::Delivery;

/// What a [`Worker`](crate::Worker) does with each job of its queue, on a tokio pool.
///
/// Closures `Fn(T, Delivery) -> impl Future<Output = Result<(), E>>` are handlers. Implement
/// the trait on a type to share state (an HTTP client, a connection pool) or to give jobs a
/// [`weight`](Handler::weight) for a global concurrency limit.
///
/// A handler may run more than once for one job (a lease lost to a pause or a partition, a
/// crash after the work and before the ack): make its effect idempotent, for instance by
/// keying it on [`Delivery::id`].
///
/// # Examples
///
/// ```
/// use brigade_queue::{Delivery, DurableId, Handler};
///
/// struct Resize;
///
/// #[async_trait::async_trait]
/// impl Handler<(u32, u32)> for Resize {
///     type Error = String;
///
///     async fn handle(&self, (w, h): (u32, u32), _delivery: Delivery) -> Result<(), String> {
///         if w == 0 || h == 0 { Err("empty image".into()) } else { Ok(()) }
///     }
///
///     fn weight(&self, (w, h): &(u32, u32)) -> u32 {
///         (w * h / 1_000_000).max(1) // megapixels
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let delivery = Delivery::detached(DurableId::new(1), "images", 1, 3);
/// assert_eq!(Resize.handle((0, 10), delivery).await, Err("empty image".to_string()));
/// assert_eq!(Resize.weight(&(4000, 3000)), 12);
/// # }
/// ```
#[async_trait]
pub trait Handler<T>: Send + Sync + 'static {
    /// What a failed run reports; its `Display` is the job's `last_error` in the store.
    type Error: fmt::Debug + fmt::Display + Send + 'static;

    /// Runs one job.
    ///
    /// # Errors
    ///
    /// The job's failure: the worker's retry policy decides whether it runs again.
    async fn handle(&self, job: T, delivery: Delivery) -> Result<(), Self::Error>;

    /// The units of a global concurrency limit this job holds while it runs (default 1).
    fn weight(&self, _job: &T) -> u32 {
        1
    }
}

#[async_trait]
impl<T, F, Fut, E> Handler<T> for F
where
    T: Send + 'static,
    F: Fn(T, Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    type Error = E;

    async fn handle(&self, job: T, delivery: Delivery) -> Result<(), E> {
        self(job, delivery).await
    }
}

/// What a [`Worker`](crate::Worker) does with each job of its queue, on a thread pool:
/// [`Handler`] for blocking work.
///
/// Closures `Fn(T, Delivery) -> Result<(), E>` are blocking handlers.
///
/// # Examples
///
/// ```
/// use brigade_queue::{BlockingHandler, Delivery, DurableId};
///
/// let checksum = |bytes: Vec<u8>, _delivery: Delivery| -> Result<(), String> {
///     let sum: u32 = bytes.iter().map(|&b| u32::from(b)).sum();
///     if sum == 0 { Err("empty file".into()) } else { Ok(()) }
/// };
/// let delivery = Delivery::detached(DurableId::new(1), "files", 1, 3);
/// assert!(checksum.handle(vec![1, 2, 3], delivery).is_ok());
/// ```
pub trait BlockingHandler<T>: Send + Sync + 'static {
    /// What a failed run reports.
    type Error: fmt::Debug + fmt::Display + Send + 'static;

    /// Runs one job on a pool thread.
    ///
    /// # Errors
    ///
    /// The job's failure: the worker's retry policy decides whether it runs again.
    fn handle(&self, job: T, delivery: Delivery) -> Result<(), Self::Error>;

    /// The units of a global concurrency limit this job holds while it runs (default 1).
    fn weight(&self, _job: &T) -> u32 {
        1
    }
}

impl<T, F, E> BlockingHandler<T> for F
where
    F: Fn(T, Delivery) -> Result<(), E> + Send + Sync + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    type Error = E;

    fn handle(&self, job: T, delivery: Delivery) -> Result<(), E> {
        self(job, delivery)
    }
}
