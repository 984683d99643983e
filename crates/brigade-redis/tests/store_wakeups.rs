//! An enqueue through one store wakes the workers waiting through another store on the
//! same keys (another process, in production): the scripts publish, each store subscribes.
#![cfg(feature = "testkit")]

mod common;

use std::time::Duration;

use brigade_queue::{NewJob, Store};
use brigade_redis::{LocalServer, RedisStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_elsewhere_wakes_this_process() {
    let producer = common::fresh_store().await;
    let url = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => LocalServer::shared().expect("local server").url(),
    };
    let consumer = RedisStore::builder(url)
        .prefix(producer.prefix())
        .connect()
        .await
        .expect("connect");
    let wakeup = consumer.wakeup("mail");
    // Let the consumer's subscriber come up; were it slower, its first subscription wakes
    // every queue anyway, so this only ever waits longer, never fails.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let woken = wakeup.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    producer
        .enqueue(NewJob::new("mail", serde_json::json!({ "to": "ada" })))
        .await
        .expect("enqueue");
    tokio::time::timeout(Duration::from_secs(20), woken)
        .await
        .expect("the other store's workers were woken");
    assert_eq!(consumer.counts("mail").await.expect("counts").available, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimable_jobs_publish_their_queue() {
    use futures_util::StreamExt;

    let store = common::fresh_store().await;
    let url = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => LocalServer::shared().expect("local server").url(),
    };
    let client = redis::Client::open(url).expect("url");
    let mut pubsub = client.get_async_pubsub().await.expect("subscriber");
    pubsub
        .subscribe(format!("{}:wakeups", store.prefix()))
        .await
        .expect("subscribe");
    store
        .enqueue(NewJob::new("reports", serde_json::json!(1)))
        .await
        .expect("enqueue");
    let mut messages = pubsub.on_message();
    let message = tokio::time::timeout(Duration::from_secs(20), messages.next())
        .await
        .expect("a message")
        .expect("the subscription is open");
    assert_eq!(message.get_payload::<String>().expect("text"), "reports");
}
