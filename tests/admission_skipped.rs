//! A pool asks its layers' `admit` only when one of them says it sees submits: a layer
//! that does not is never asked (and the submit reads no queue length for it), one that
//! does is asked once per submit. Both pools.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use brigade::hooks::{Admission, Middleware, QueueState};
use brigade::thread::ThreadPool;
use brigade::tokio::TokioPool;
use brigade::{BoxAsyncJob, BoxJob, JobContext, Rejection};

/// Refuses every job it is asked about, and counts the questions.
struct RefuseAll {
    asked: AtomicU32,
    sees_submits: bool,
}

impl RefuseAll {
    fn new(sees_submits: bool) -> Arc<Self> {
        Arc::new(RefuseAll {
            asked: AtomicU32::new(0),
            sees_submits,
        })
    }

    fn asked(&self) -> u32 {
        self.asked.load(Ordering::Relaxed)
    }
}

impl<J, E> Middleware<J, E> for RefuseAll {
    fn admit(&self, _: &J, _: QueueState) -> Admission {
        self.asked.fetch_add(1, Ordering::Relaxed);
        Admission::Reject(Rejection::new("refused"))
    }

    fn sees_submits(&self) -> bool {
        self.sees_submits
    }
}

fn thread_pool(layer: Arc<RefuseAll>) -> ThreadPool<BoxJob<u32, String>> {
    ThreadPool::builder()
        .workers(1)
        .layer_shared(layer)
        .build()
        .expect("valid pool")
}

#[test]
fn threads_skip_admission_when_no_layer_sees_submits() {
    let silent = RefuseAll::new(false);
    let pool = thread_pool(Arc::clone(&silent));
    let handle = pool
        .submit(BoxJob::new(|_: &JobContext| Ok(7)))
        .expect("never asked, so never refused");
    assert_eq!(handle.join().expect("ran"), 7);
    assert_eq!(silent.asked(), 0);

    let screening = RefuseAll::new(true);
    let pool = thread_pool(Arc::clone(&screening));
    for _ in 0..3 {
        assert!(pool.submit(BoxJob::new(|_: &JobContext| Ok(7))).is_err());
    }
    assert_eq!(screening.asked(), 3);
    assert_eq!(pool.stats().rejected, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_skips_admission_when_no_layer_sees_submits() {
    let tokio_pool = |layer: Arc<RefuseAll>| {
        TokioPool::<BoxAsyncJob<u32, String>>::builder()
            .workers(1)
            .layer_shared(layer)
            .build()
            .expect("valid pool")
    };
    let job = || BoxAsyncJob::new(|_: JobContext| async { Ok(7) });

    let silent = RefuseAll::new(false);
    let pool = tokio_pool(Arc::clone(&silent));
    let handle = pool
        .submit(job())
        .await
        .expect("never asked, so never refused");
    assert_eq!(handle.await.expect("ran"), 7);
    assert_eq!(silent.asked(), 0);

    let screening = RefuseAll::new(true);
    let pool = tokio_pool(Arc::clone(&screening));
    for _ in 0..3 {
        assert!(pool.submit(job()).await.is_err());
    }
    assert_eq!(screening.asked(), 3);
    assert_eq!(pool.stats().rejected, 3);
}
