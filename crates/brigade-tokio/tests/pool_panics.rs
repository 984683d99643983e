//! A job's panic is its outcome, whatever its payload does when dropped: the worker that
//! caught it lives on and the books stay balanced.

use std::time::Duration;

use brigade_core::{BoxAsyncJob, ErrorKind, JobContext};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;

/// Generous: bounds waits for what takes microseconds when all is well.
const PATIENCE: Duration = Duration::from_secs(20);

/// A panic payload whose drop panics too.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the payload's drop panicked");
    }
}

fn panics_with_a_grenade(in_poll: bool) -> Job {
    BoxAsyncJob::new(move |_cx: JobContext| {
        // Before the future exists (in the job's `run`) or while it is polled.
        if !in_poll {
            std::panic::panic_any(PanicsWhenDropped);
        }
        async move {
            tokio::task::yield_now().await;
            std::panic::panic_any(PanicsWhenDropped)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_payload_that_panics_when_dropped_costs_no_worker() {
    let pool = TokioPool::<Job>::builder().workers(1).build().unwrap();
    for in_poll in [false, true] {
        let panicking = pool.submit(panics_with_a_grenade(in_poll)).await.unwrap();
        let error = tokio::time::timeout(PATIENCE, panicking)
            .await
            .expect("the panicking job resolved")
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Panicked, "{error:?}");
        let next = pool
            .submit(BoxAsyncJob::new(|_cx: JobContext| async { Ok(2) }))
            .await
            .unwrap();
        let next = tokio::time::timeout(PATIENCE, next)
            .await
            .expect("the only worker lived on to run the next job");
        assert_eq!(next, Ok(2));
    }
    pool.wait_idle().await;
    let stats = pool.stats();
    assert_eq!((stats.workers, stats.busy), (1, 0), "{stats:?}");
    assert_eq!((stats.panicked, stats.completed), (2, 2), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
    assert!(pool.shutdown().await.is_clean());
}
