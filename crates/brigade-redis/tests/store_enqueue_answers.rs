//! An enqueue's answer is the enqueue script's: once that has added the jobs, nothing the
//! store does afterwards (dropping the ids a duplicate did not use) may answer the batch
//! as failed, or a caller trying again would add every job twice.
#![cfg(feature = "testkit")]

mod common;

use brigade_queue::{EnqueueOptions, NewJob, Store};
use brigade_redis::{LocalServer, RedisStore};
use serde_json::json;

/// The URL of the server `common::fresh_store` uses.
fn server_url() -> String {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => LocalServer::shared()
            .unwrap_or_else(|error| panic!("{error}"))
            .url(),
    }
}

/// `url` with `user` (any password: the user has none) in place of its credentials.
fn as_user(url: &str, user: &str) -> String {
    let rest = url.strip_prefix("redis://").expect("a redis:// URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("redis://{user}:unused@{host}")
}

fn keyed(n: u32) -> NewJob {
    NewJob::new("answers", json!(n)).with_options(EnqueueOptions::new().unique_key("k"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_script_added_is_answered_as_added() {
    let admin = common::fresh_store().await;
    // A user that may do all the store does except drop hash fields outside its scripts:
    // the one call an enqueue makes after its script, for the id a duplicate left unused.
    let user = format!("{}-no-hdel", admin.prefix());
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("reset")
        .arg("on")
        .arg("nopass")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .arg("-hdel")
        .query_async(&mut admin.connection())
        .await
        .expect("acl setuser");
    let store = RedisStore::builder(as_user(&server_url(), &user))
        .prefix(admin.prefix())
        .connect()
        .await
        .expect("connect as the restricted user");

    let first = store.enqueue(keyed(1)).await.expect("enqueue");
    let batch = vec![keyed(2), NewJob::new("answers", json!(3))];
    let answered = store.enqueue_batch(batch).await;

    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut admin.connection())
        .await
        .expect("acl deluser");
    let added = answered.expect("the script added the batch, so the batch is added");
    assert_eq!(added[0].id, first.id);
    assert!(added[0].duplicate && !added[1].duplicate, "{added:?}");
    assert_eq!(admin.counts("answers").await.expect("counts").available, 2);
}
