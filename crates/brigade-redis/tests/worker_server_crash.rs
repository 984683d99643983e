//! `redis-server` killed with SIGKILL while workers run, and started again on its
//! append-only file (`appendfsync always`): the workers carry on with no action, and every
//! acknowledged job ends completed, once.
#![cfg(feature = "testkit")]

use std::time::{Duration, Instant};

use brigade_core::CancellationToken;
use brigade_queue::{Delivery, EnqueueError, Queue, QueueCounts, Store, Worker, WorkerReport};
use brigade_redis::{LocalServer, RedisStore};

async fn drained(store: &RedisStore, queue: &str, jobs: u64, patience: Duration) -> QueueCounts {
    let deadline = Instant::now() + patience;
    loop {
        if let Ok(counts) = store.counts(queue).await {
            if counts.completed == jobs {
                return counts;
            }
            assert!(Instant::now() < deadline, "{queue} stuck at {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_ride_out_a_server_kill() {
    let server = tokio::task::spawn_blocking(LocalServer::start)
        .await
        .expect("task")
        .unwrap_or_else(|error| panic!("{error}"));
    let store = RedisStore::builder(server.url())
        .response_timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect("connect");
    let queue = Queue::<RedisStore, u32>::new(store.clone(), "steady");
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
    let server = tokio::task::spawn_blocking(move || {
        server.crash().expect("kill -9");
        std::thread::sleep(Duration::from_secs(1));
        server
            .start_server()
            .expect("restart on the append-only file");
        server
    })
    .await
    .expect("task");
    // More work after the restart, through the same store.
    let more = loop {
        match queue.enqueue_batch((300..400).collect()).await {
            Ok(more) => break more,
            Err(error) => {
                assert!(
                    matches!(error, EnqueueError::Store(_, ref e) if e.is_transient()),
                    "{error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(more.len(), 100);
    let counts = drained(&store, "steady", 400, Duration::from_secs(120)).await;
    assert_eq!(
        counts.total(),
        400,
        "nothing lost, nothing extra: {counts:?}"
    );
    shutdown.cancel();
    let mut total = WorkerReport::default();
    for worker in workers {
        total += worker.await.expect("worker");
    }
    assert!(total.store_errors > 0, "the kill was felt: {total:?}");
    assert_eq!(total.ended(), total.claimed, "{total:?}");
    drop(server);
}
