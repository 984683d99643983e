//! Workers against a real PostgreSQL: blocking handlers on a thread pool, limits shared by
//! several workers, and a server that crashes and comes back while they run.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::CancellationToken;
use brigade_postgres::{LocalCluster, PgStore};
use brigade_queue::{
    Delivery, GlobalConcurrency, GlobalRate, Queue, QueueCounts, Store, Worker, WorkerReport,
};

async fn drained<S: Store>(store: &S, queue: &str, jobs: u64, patience: Duration) -> QueueCounts {
    let deadline = Instant::now() + patience;
    loop {
        let counts = store.counts(queue).await.expect("counts");
        if counts.completed == jobs {
            return counts;
        }
        assert!(Instant::now() < deadline, "{queue} stuck at {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_handlers_run_on_a_thread_pool() {
    let store = common::fresh_store_with(20).await;
    Queue::<PgStore, u64>::new(store.clone(), "files")
        .enqueue_batch((0..50).collect())
        .await
        .expect("enqueue");
    let worker = Worker::builder(store.clone(), "files")
        .concurrency(4)
        .handle_blocking(|n: u64, delivery: Delivery| {
            // A blocking call: fine here, the run owns a pool thread.
            std::thread::sleep(Duration::from_millis(2));
            assert!(
                std::thread::current()
                    .name()
                    .is_some_and(|name| name.contains("files"))
            );
            if delivery.is_cancelled() {
                Err(format!("{n} stopped"))
            } else {
                Ok(())
            }
        })
        .expect("worker");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    drained(&store, "files", 50, Duration::from_secs(60)).await;
    shutdown.cancel();
    assert_eq!(running.await.expect("worker").completed, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_concurrency_limit_holds_across_workers() {
    let store = common::fresh_store_with(20).await;
    Queue::<PgStore, u32>::new(store.clone(), "gpu")
        .enqueue_batch((0..60).map(|n| n % 3 + 1).collect())
        .await
        .expect("enqueue");
    let limit = GlobalConcurrency::new("gpu-units", 4).expect("limit");
    let in_use = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let shutdown = CancellationToken::new();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (in_use, peak) = (Arc::clone(&in_use), Arc::clone(&peak));
        let worker = Worker::builder(store.clone(), "gpu")
            .concurrency(4)
            .concurrency_limit(limit.clone())
            .handle(Weighted { in_use, peak })
            .expect("worker");
        workers.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    drained(&store, "gpu", 60, Duration::from_secs(120)).await;
    shutdown.cancel();
    for worker in workers {
        worker.await.expect("worker");
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= 4,
        "{peak} units in use at once across workers, limit 4"
    );
    assert!(peak >= 2, "the limit admitted parallel work ({peak})");
}

/// Holds `weight = job` units for a few milliseconds, tracking the peak in use.
struct Weighted {
    in_use: Arc<AtomicU32>,
    peak: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl brigade_queue::Handler<u32> for Weighted {
    type Error = String;

    async fn handle(&self, units: u32, _: Delivery) -> Result<(), String> {
        let now = self.in_use.fetch_add(units, Ordering::SeqCst) + units;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(15)).await;
        self.in_use.fetch_sub(units, Ordering::SeqCst);
        Ok(())
    }

    fn weight(&self, units: &u32) -> u32 {
        *units
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_rate_limit_holds_across_workers() {
    let store = common::fresh_store_with(20).await;
    Queue::<PgStore, u32>::new(store.clone(), "smtp")
        .enqueue_batch((0..40).collect())
        .await
        .expect("enqueue");
    let rate = GlobalRate::new("smtp", 20, Duration::from_secs(1))
        .expect("rate")
        .burst(5)
        .expect("burst");
    let starts = Arc::new(Mutex::new(Vec::new()));
    let shutdown = CancellationToken::new();
    let mut workers = Vec::new();
    let before = Instant::now();
    for _ in 0..2 {
        let starts = Arc::clone(&starts);
        let worker = Worker::builder(store.clone(), "smtp")
            .concurrency(8)
            .rate_limit(rate.clone())
            .handle(move |_: u32, _: Delivery| {
                starts.lock().expect("starts").push(Instant::now());
                async { Ok::<(), String>(()) }
            })
            .expect("worker");
        workers.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    drained(&store, "smtp", 40, Duration::from_secs(60)).await;
    shutdown.cancel();
    for worker in workers {
        worker.await.expect("worker");
    }
    let last = starts
        .lock()
        .expect("starts")
        .iter()
        .copied()
        .max()
        .expect("starts");
    // Grants happen on the server's clock and are stamped here when the handler starts, so
    // on a loaded machine the stamps of grants far apart can bunch up: only a bound that
    // delays cannot break is checked. At 20/s with a burst of 5, the 40th grant comes at
    // least 1.75 s after the first, which came after `before`; its stamp comes later still.
    let took = last.duration_since(before);
    assert!(
        took >= Duration::from_millis(1_700),
        "40 starts at 20/s + burst 5 take at least 1.75 s, took {took:?}"
    );
}

/// A job waiting for units has taken no rate token yet: the token comes last, just before
/// the start, so a long wait for units cannot spend it in a later second on top of that
/// second's own tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waiting_for_units_holds_no_rate_token() {
    let store = common::fresh_store_with(20).await;
    Queue::<PgStore, u32>::new(store.clone(), "render")
        .enqueue_batch(vec![1, 2])
        .await
        .expect("enqueue");
    let units = GlobalConcurrency::new("render-units", 1).expect("limit");
    // Three tokens at once, then one every 2 s: none comes back during the look below.
    let rate = GlobalRate::new("render-rate", 1, Duration::from_secs(2))
        .expect("rate")
        .burst(3)
        .expect("burst");
    let first_running = CancellationToken::new();
    let finish_first = CancellationToken::new();
    let started = Arc::new(AtomicU32::new(0));
    let worker = {
        let (first_running, finish_first) = (first_running.clone(), finish_first.clone());
        let started = Arc::clone(&started);
        Worker::builder(store.clone(), "render")
            .concurrency(2)
            .concurrency_limit(units)
            .rate_limit(rate.clone())
            .handle(move |_: u32, _: Delivery| {
                let first = started.fetch_add(1, Ordering::SeqCst) == 0;
                let (first_running, finish_first) = (first_running.clone(), finish_first.clone());
                async move {
                    if first {
                        first_running.cancel();
                        finish_first.cancelled().await;
                    }
                    Ok::<(), String>(())
                }
            })
            .expect("worker")
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    first_running.cancelled().await;
    // Both jobs claimed: the second waits at the limits while the first holds the unit.
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.counts("render").await.expect("counts").running < 2 {
        assert!(
            Instant::now() < deadline,
            "the second job was never claimed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Time for a worker that takes the token before the units to have taken it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = store.take_rate(&rate, 2).await.expect("take_rate");
    assert_eq!(
        left.granted, 2,
        "the first job took one token of three, the waiting one none: {left:?}"
    );
    finish_first.cancel();
    drained(&store, "render", 2, Duration::from_secs(60)).await;
    shutdown.cancel();
    assert_eq!(running.await.expect("worker").completed, 2);
}

/// The server crashes (`pg_ctl stop -m immediate`) while workers run and comes back; the
/// workers carry on with no action, and every job ends completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_ride_out_a_server_crash() {
    let cluster = tokio::task::spawn_blocking(LocalCluster::start)
        .await
        .expect("task")
        .unwrap_or_else(|error| panic!("{error}"));
    let store = PgStore::builder(cluster.url("postgres"))
        .acquire_timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect("connect");
    let queue = Queue::<PgStore, u32>::new(store.clone(), "steady");
    queue
        .enqueue_batch((0..300).collect())
        .await
        .expect("enqueue");
    let shutdown = CancellationToken::new();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let worker = Worker::builder(store.clone(), "steady")
            .concurrency(4)
            .lease(Duration::from_secs(6))
            .poll(Duration::from_millis(100))
            .handle(|_: u32, _: Delivery| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok::<(), String>(())
            })
            .expect("worker");
        workers.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.crash().expect("crash");
        std::thread::sleep(Duration::from_secs(1));
        cluster.start_server().expect("restart");
        cluster
    })
    .await
    .expect("task");
    // More work after the restart, through the same store.
    let more = loop {
        match queue.enqueue_batch((300..400).collect()).await {
            Ok(more) => break more,
            Err(error) => {
                assert!(
                    matches!(error, brigade_queue::EnqueueError::Store(_, ref e) if e.is_transient()),
                    "{error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(more.len(), 100);
    let counts = drained(&store, "steady", 400, Duration::from_secs(120)).await;
    assert_eq!(counts.total(), 400, "{counts:?}");
    shutdown.cancel();
    let mut total = WorkerReport::default();
    for worker in workers {
        total += worker.await.expect("worker");
    }
    assert!(total.store_errors > 0, "the crash was felt: {total:?}");
    assert_eq!(total.ended(), total.claimed, "{total:?}");
    drop(cluster);
}
