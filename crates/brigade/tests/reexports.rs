//! Every path the facade promises resolves, under the features that promise it.

#[allow(unused_imports)]
use brigade::{
    AsyncJob, BoxAsyncJob, BoxJob, CancellationToken, Completions, ConfigError, ErrorKind,
    Executor, InAsyncContext, Job, JobContext, JobError, JobHandle, JobId, JobResult, Rejection,
    ShutdownReport, Stats, SubmitError, SubmitTimeoutError, TrySubmitError, Workload, async_job_fn,
    available_cores, job_fn,
};

#[test]
fn core_vocabulary_resolves() {
    let cx = JobContext::detached();
    let mut job = job_fn(|cx| Ok::<_, String>(cx.attempt()));
    assert_eq!(job.run(&cx), Ok(1));
    assert!(available_cores() >= 1);
    let _: Option<brigade::hooks::Admission> = None;
    let _: Option<&dyn brigade::hooks::Middleware<(), ()>> = None;
}

#[test]
fn prelude_resolves() {
    #[allow(unused_imports)]
    use brigade::prelude::*;
    let _: Option<BoxJob<(), String>> = None;
    let _: Option<Stats> = None;
}

#[cfg(feature = "thread")]
#[test]
fn thread_backend_resolves() {
    use brigade::prelude::{BoxPool, ThreadPool};
    let pool: BoxPool<u8, String> = ThreadPool::builder().workers(1).build().unwrap();
    let handle = pool.submit(BoxJob::new(|_: &JobContext| Ok(7))).unwrap();
    assert_eq!(handle.join().unwrap(), 7);
    let _: Option<brigade::thread::Builder<BoxJob<u8, String>>> = None;
    let _: Option<brigade::thread::ErrGroup<String>> = None;
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_backend_resolves() {
    #[allow(unused_imports)]
    use brigade::prelude::{AsyncJob, TokioPool};
    let _: Option<TokioPool<BoxAsyncJob<u8, String>>> = None;
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_module_resolves() {
    let _: Option<brigade::tokio::Builder<BoxAsyncJob<u8, String>>> = None;
    let _: Option<brigade::tokio::ErrGroup<String>> = None;
    let _: Option<brigade::tokio::BoxPool<u8, String>> = None;
}

#[cfg(feature = "retry")]
#[test]
fn retry_resolves() {
    let _: Option<brigade::middleware::Retry<String>> = None;
    let _: Option<brigade::middleware::Backoff> = None;
}

#[cfg(feature = "dead-letter")]
#[test]
fn dead_letter_resolves() {
    let _: Option<brigade::middleware::DeadLetterQueue<u8, brigade::middleware::MemorySink<u8>>> =
        None;
}

#[cfg(feature = "dead-letter-jsonl")]
#[test]
fn dead_letter_jsonl_resolves() {
    let _: Option<brigade::middleware::JsonlSink<u8>> = None;
}

#[cfg(feature = "rate-limit")]
#[test]
fn rate_limit_resolves() {
    let _: Option<brigade::middleware::RateLimit> = None;
    let _: Option<brigade::middleware::KeyedRateLimit<u8, u8>> = None;
    let _: Option<brigade::middleware::Rate> = None;
}

#[cfg(feature = "drop")]
#[test]
fn drop_resolves() {
    let _: Option<brigade::middleware::Overflow> = None;
    let _: Option<brigade::middleware::Backpressure<u8>> = None;
}

#[cfg(feature = "weighted")]
#[test]
fn weighted_resolves() {
    let _: Option<brigade::middleware::WeightedLimit<()>> = None;
}

#[cfg(feature = "timeout")]
#[test]
fn timeout_resolves() {
    let _: Option<brigade::middleware::Timeout<()>> = None;
}

#[cfg(feature = "queue")]
#[test]
fn queue_resolves() {
    let _: Option<brigade::queue::NewJob> = None;
    let _: Option<brigade::queue::EnqueueOptions> = None;
    let _: Option<brigade::queue::WorkerReport> = None;
    let _: Option<brigade::queue::GlobalRate> = None;
    fn _worker_of<S: brigade::queue::Store>(_: brigade::queue::Worker<S>) {}
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_resolves() {
    let _: Option<brigade::postgres::PgStore> = None;
    let _: Option<brigade::queue::Queue<brigade::postgres::PgStore, u8>> = None;
    let _: Option<brigade::queue::Worker<brigade::postgres::PgStore>> = None;
}

#[cfg(feature = "redis")]
#[test]
fn redis_resolves() {
    let _: Option<brigade::redis::RedisStore> = None;
    let _: Option<brigade::redis::RedisStoreBuilder> = None;
    let _: Option<brigade::queue::Queue<brigade::redis::RedisStore, u8>> = None;
    let _: Option<brigade::queue::Worker<brigade::redis::RedisStore>> = None;
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_resolves() {
    let _: Option<brigade::sqlite::SqliteStore> = None;
    let _: Option<brigade::sqlite::SqliteStoreBuilder> = None;
    let _: Option<brigade::sqlite::Synchronous> = None;
    let _: Option<brigade::queue::Queue<brigade::sqlite::SqliteStore, u8>> = None;
    let _: Option<brigade::queue::Worker<brigade::sqlite::SqliteStore>> = None;
}

/// Implementing `AsyncJob` takes a plain `async fn run`: no attribute, and no
/// `async-trait` dependency.
#[cfg(feature = "tokio")]
#[test]
fn async_jobs_are_plain_async_fns() {
    use brigade::prelude::*;

    struct Double(u32);

    impl AsyncJob for Double {
        type Output = u32;
        type Error = String;
        async fn run(&mut self, _cx: &JobContext) -> Result<u32, String> {
            Ok(self.0 * 2)
        }
    }

    let pool = TokioPool::builder()
        .own_runtime(1)
        .workers(1)
        .build()
        .unwrap();
    let handle = pool.blocking_submit(Double(21)).unwrap();
    assert_eq!(handle.join().unwrap(), 42);
}
