//! A durable brigade job queue on Redis.
//!
//! [`RedisStore`] implements [`brigade_queue::Store`] on Redis 7.0 or newer: jobs wait in a
//! stream per queue and priority level, read through a consumer group with `XREADGROUP`;
//! every transition (enqueue with its depth cap, claim, ack, retry, dead, release, rescue,
//! cancel, replay) is one Lua script, atomic and fenced by the job's current token; leases
//! live in a sorted set scored by expiry on the server's clock, renewed by heartbeats.
//! Rate and concurrency limits shared by every host are Lua scripts on the server's `TIME`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use brigade_core::CancellationToken;
//! use brigade_queue::{Delivery, Queue, Worker};
//! use brigade_redis::RedisStore;
//!
//! let store = RedisStore::connect(&std::env::var("REDIS_URL")?).await?;
//! Queue::new(store.clone(), "thumbnails").enqueue_batch(vec![1_u64, 2, 3]).await?;
//!
//! let worker = Worker::builder(store, "thumbnails").concurrency(4).handle(
//!     |image: u64, delivery: Delivery| async move {
//!         println!("thumbnail of image {image}, run {}", delivery.attempt());
//!         Ok::<(), String>(())
//!     },
//! )?;
//! let report = worker.run(CancellationToken::new()).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Data model
//!
//! Every key starts with the store's prefix (default `brigade`). A queue's keys all carry
//! the hash tag `{queue}`, so a queue lives in one slot; ids and limits have slots of their
//! own. The store speaks to one server (a primary, with or without replicas): Redis
//! Cluster is not supported, since the connection is not cluster-aware and the scripts
//! name the keys they touch in their arguments, which Cluster does not route.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:{q}:job:<id>` | hash | the job: payload, state, attempt, max attempts, priority, run-at, times, last error, unique key, current fencing token and owner, stream entry (a finished job may keep its last one) |
//! | `P:{q}:ready:<priority>` | stream | one entry per waiting or running job of that priority, consumer group `workers`; finished entries until the next trim |
//! | `P:{q}:returned:<priority>` | sorted set | jobs given back (rescued, released) on their pending entry, by the entry's time |
//! | `P:{q}:levels` | sorted set | the priority levels with undelivered entries or given-back jobs |
//! | `P:{q}:streams` | set | every priority level that has a stream |
//! | `P:{q}:tidied` | string | present for a minute after the rescuer tidied the consumer group |
//! | `P:{q}:delayed` | sorted set | scheduled and retrying jobs by run-at (µs) |
//! | `P:{q}:leases` | sorted set | running jobs by lease expiry (µs, server clock) |
//! | `P:{q}:dead` | sorted set | dead jobs by time of death |
//! | `P:{q}:finished` | list | completed and cancelled jobs in finish order, for retention |
//! | `P:{q}:unique` | hash | unique key → the live job holding it |
//! | `P:{q}:counts` | hash | jobs per state (the depth cap and `counts` read it) |
//! | `P:{q}:tokens` | string | the fencing token counter |
//! | `P:{ids}:next`, `P:{ids}:queue` | string, hash | the job id counter; id → queue |
//! | `P:{ids}:sweep` | hash | where retention's sweep of `P:{ids}:queue` stands: the counter reading it judges ids up to, when that was read, the scan cursor |
//! | `P:queues` | set | every queue, for retention |
//! | `P:wakeups` | pub/sub channel | queue names, published when a job becomes claimable |
//! | `P:units` | pub/sub channel | global concurrency limit keys, published when a run gives units back |
//! | `P:{rate:<key>}` | string | a global rate limit's theoretical arrival time (µs) |
//! | `P:{units:<key>}:holders`, `:weights` | sorted set, hash | a global concurrency limit's holders by lease expiry, and their weights |
//!
//! # Why this shape
//!
//! - **Priorities**: a stream delivers in arrival order only, so there is one stream per
//!   priority level; a claim reads the levels from the highest down. Within a level, jobs
//!   come out in the order they joined its stream: a job due at its enqueue joins then
//!   (one enqueued with a `run_at` already past included), a scheduled or retried job at
//!   the first claim after its time, behind the jobs that joined before. That is the
//!   order of Sidekiq's scheduled set, not PostgreSQL's run-at-then-id: a store that
//!   appends cannot put a job back in the middle of its stream.
//! - **Given-back jobs keep their place**: a rescued or released job keeps its pending
//!   entry and waits in its level's `returned` set, read before the level's new entries,
//!   one per claim, so that jobs that came back together (a poison job's neighbours) go
//!   out in different claims.
//! - **Fencing**: a plain `XACK` succeeds from any consumer, so every run's end is a script
//!   that first checks the job's current token (kept in its hash) and only then
//!   acknowledges and deletes the entry. A worker whose lease was rescued and whose job was
//!   claimed again is refused, and changes nothing.
//! - **Leases**: a lease is a score in `leases` (expiry on the server's clock), not the
//!   pending entry's idle time: leases of different lengths in one queue, a heartbeat that
//!   answers exactly which leases are still held, and a cancel that revokes one all need
//!   per-job state. The pending entries list still holds every running job (`XPENDING`
//!   shows them, and heartbeats reset their idle time with `XCLAIM … JUSTID`), and every
//!   given-back job until a claim moves its entry to the claiming worker.
//! - **Attempts** are a counter in the job hash, charged at claim: a release gives its
//!   attempt back and a replay starts over, which a delivery count cannot do. An expired
//!   lease counts as a run; at the job's last attempt the rescuer buries it.
//! - **Scheduled and retrying jobs** wait in `delayed`; every claim first moves the due
//!   ones to their stream (idempotent, so any worker may do it).
//! - **Retention**: the work stream is never trimmed with `MAXLEN` (that would delete
//!   undelivered jobs). An ack trims the stream with `XTRIM MINID` up to its oldest pending
//!   entry (or past the last delivered one when none is pending): a stream delivers in ID
//!   order, so nothing older is undelivered or running, and one trim costs less than an
//!   `XDEL` per entry. An entry acknowledged while an older run still runs stays until that
//!   run ends. The job's hash stays until
//!   [`Store::purge_finished`](brigade_queue::Store::purge_finished) (or
//!   [`RedisStore::spawn_retention`]) deletes it, walking `finished` from its head. Each
//!   pass also scans a slice of `{ids}:queue` for ids no job was written for (an enqueue
//!   that failed between drawing its ids and writing its jobs) and drops them, judging
//!   only ids drawn at least an hour earlier, so an enqueue under way keeps its own.
//! - **Batches**: claims and acks write the keys every job of a batch shares (tokens,
//!   leases, counters, stream acknowledgements, `finished`) once per batch and each job's
//!   hash once; with `appendfsync always` every script waits for a disk flush, so a worker
//!   claims for all its free slots and acknowledges every run that ended in one script.
//! - **Wake-ups**: the scripts that make a job claimable (enqueue, release, rescue,
//!   replay) `PUBLISH` the queue's name on `P:wakeups`, and a release of units the
//!   limit's key on `P:units`; each store keeps one subscribed connection of its own and
//!   wakes its workers (or one run waiting for the units). Workers still poll behind it. Claims do
//!   not block in `XREADGROUP BLOCK`: a blocking read cannot run inside the claim script,
//!   nor respect priorities.
//!
//! # Durability
//!
//! What an acknowledged enqueue or ack survives is what Redis persistence gives:
//!
//! - `appendonly yes` with `appendfsync always`: every write is in the append-only file on
//!   disk before Redis answers. A crash or kill of the server, or of the machine, loses
//!   nothing acknowledged; throughput is bounded by the disk's fsync rate.
//! - `appendfsync everysec` (Redis's default for AOF): a server crash loses nothing (the
//!   page cache holds the writes), a machine crash or power loss loses up to about the last
//!   second of writes — enqueues that were acknowledged, and acks (those jobs run again).
//! - RDB snapshots only: everything since the last snapshot.
//! - Failover: replication is asynchronous, so a replica promoted after its primary died
//!   lacks the writes it had not received — acknowledged enqueues can be lost and finished
//!   runs can run again. `WAIT` narrows that window but does not close it.
//!
//! At-least-once holds through worker crashes and restarts of the server with AOF
//! `always`; use PostgreSQL where a lost enqueue is unacceptable under every failure.
//!
//! # Limits
//!
//! A batch enqueue holds jobs of one queue (a queue is one hash slot, and a script is
//! atomic only within one), at most [`MAX_BATCH`] of them; a claim takes at most as many.
//! Queue and limit names must not contain `{` or `}`.
//!
//! # Features
//!
//! - `local-server`: [`LocalServer`], a throwaway `redis-server` started from the machine's
//!   binary, and [`fresh_store`], for tests and examples.
//! - `testkit`: `local-server` plus the store conformance kit of `brigade-queue`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connection;
mod keys;
mod limits;
#[cfg(feature = "local-server")]
mod local_server;
mod records;
mod scripts;
mod store;
mod wakeups;

#[cfg(feature = "local-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "local-server")))]
pub use local_server::{LocalServer, LocalServerError, fresh_store};
pub use store::{DEFAULT_PREFIX, MAX_BATCH, RedisStore, RedisStoreBuilder};
