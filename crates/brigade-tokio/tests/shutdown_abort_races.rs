//! A shutdown that stops the jobs racing a worker that is deciding a job's start: the job
//! the worker puts aside after the shutdown took the unstarted ones still comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_core::hooks::{Middleware, Start};
use brigade_core::{BoxAsyncJob, CancellationToken, ErrorKind, JobContext};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;

/// Generous: bounds waits for what takes microseconds when all is well.
const PATIENCE: Duration = Duration::from_secs(20);

/// Defers every start by an hour, once `gate` opens: the worker deciding a start sits
/// in here until the test lets it go.
struct DefersWhenLetGo {
    entered: CancellationToken,
    gate: CancellationToken,
}

impl Middleware<Job, String> for DefersWhenLetGo {
    fn before_start(&self, _: &Job, now: Instant) -> Start {
        self.entered.cancel();
        self.gate.wait_timeout(PATIENCE);
        Start::NotBefore(now + Duration::from_secs(3600))
    }
}

fn quick() -> Job {
    BoxAsyncJob::new(|_cx: JobContext| async { Ok(1) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_now_hands_back_a_start_deferred_while_it_aborts() {
    let (entered, gate) = (CancellationToken::new(), CancellationToken::new());
    let pool = Arc::new(
        TokioPool::<Job>::builder()
            .workers(1)
            .layer(DefersWhenLetGo {
                entered: entered.clone(),
                gate: gate.clone(),
            })
            .build()
            .unwrap(),
    );
    let deciding = pool.submit(quick()).await.unwrap();
    tokio::time::timeout(PATIENCE, entered.cancelled())
        .await
        .expect("the worker asks the layer about the first job");
    let queued = pool.submit(quick()).await.unwrap();
    let stopper = Arc::clone(&pool);
    let stopping = tokio::spawn(async move { stopper.shutdown_now().await });
    // The queued job handed back: the shutdown has taken what it found unstarted.
    for _ in 0..20_000 {
        if pool.stats().returned == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(pool.stats().returned, 1, "the shutdown took the queued job");
    // Only now does the worker put the first job aside, for an hour.
    gate.cancel();
    let report = tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("shutdown_now did not wait out the deferred start")
        .unwrap();
    assert_eq!(report.unstarted.len(), 2, "both jobs came back");
    for handle in [deciding, queued] {
        assert_eq!(handle.await.unwrap_err().kind(), ErrorKind::Returned);
    }
    let stats = pool.stats();
    assert_eq!((stats.returned, stats.delayed), (2, 0), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}
