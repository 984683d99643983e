//! A batch email sender that survives crashes: 1,000 emails enqueued in one PostgreSQL
//! transaction (or one atomic batch on Redis), sent by three worker processes under a
//! global 50-per-second limit. One worker is killed with SIGKILL mid-run and its emails are
//! still sent; emails to mailboxes that do not exist fail for good, land dead, and are
//! replayed once fixed.
//!
//! The seeds' "Batch Email Sender", moved from one process's memory to a durable queue.
//!
//! ```sh
//! cargo run --example distributed_email_sender            # everything, in one command
//! cargo run --example distributed_email_sender -- demo --store redis   # the same, on Redis
//! ```
//!
//! Or by hand, one terminal each (`DATABASE_URL` must then be set, or `REDIS_URL` with
//! `--store redis` after each command):
//!
//! ```sh
//! cargo run --example distributed_email_sender -- relay    # the mail relay on 127.0.0.1:2525
//! cargo run --example distributed_email_sender -- worker   # as many as you like
//! cargo run --example distributed_email_sender -- enqueue  # 1,000 emails, one transaction
//! cargo run --example distributed_email_sender -- status   # counts and dead letters
//! cargo run --example distributed_email_sender -- replay   # fix the mailboxes, replay the dead
//! ```
//!
//! With no `DATABASE_URL` (`REDIS_URL` for Redis), the one-command run starts a throwaway
//! PostgreSQL (`redis-server`) from the machine's server binaries.

mod relay;
mod worker;

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::postgres::{LocalCluster, PgStore};
use brigade::queue::{EnqueueOptions, NewJob, Store};
use brigade::redis::{LocalServer, RedisStore};
use serde::{Deserialize, Serialize};

/// The queue the emails go through.
const QUEUE: &str = "emails";
/// The schema holding the demo's queue (and its campaigns table); on Redis, its key prefix.
const SCHEMA: &str = "email_demo";
/// Where the relay listens when run by hand.
const RELAY_ADDR: &str = "127.0.0.1:2525";
const EMAILS: u64 = 1_000;
const WORKERS: usize = 3;

/// One email, as it is stored in the queue.
#[derive(Debug, Serialize, Deserialize)]
struct Email {
    campaign: String,
    user_id: u64,
    to: String,
    subject: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1))
            .cloned()
    };
    let relay = flag("--relay").unwrap_or_else(|| RELAY_ADDR.to_owned());
    let kind = StoreKind::parse(flag("--store").as_deref())?;
    match args.first().map(String::as_str) {
        None | Some("demo") | Some("--store") => demo(kind).await,
        Some("worker") => {
            let name = flag("--name").unwrap_or_else(|| format!("worker-{}", std::process::id()));
            match kind {
                StoreKind::Postgres => {
                    let store = PgStore::builder(kind.url()?)
                        .schema(SCHEMA)
                        .max_connections(4)
                        .connect()
                        .await?;
                    worker::run(store, &relay, &name).await
                }
                StoreKind::Redis => {
                    worker::run(connect_redis(&kind.url()?).await?, &relay, &name).await
                }
            }
        }
        Some("relay") => {
            let addr = relay::start(&relay, Arc::default()).await?;
            println!("mail relay on http://{addr}; Ctrl-C to stop");
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Some("enqueue") => match kind {
            StoreKind::Postgres => enqueue(&connect(&kind.url()?).await?).await,
            StoreKind::Redis => enqueue(&connect_redis(&kind.url()?).await?).await,
        },
        Some("status") => match kind {
            StoreKind::Postgres => status(&connect(&kind.url()?).await?).await,
            StoreKind::Redis => status(&connect_redis(&kind.url()?).await?).await,
        },
        Some("replay") => {
            reqwest::Client::new()
                .post(format!("http://{relay}/fix"))
                .send()
                .await?;
            let replayed = match kind {
                StoreKind::Postgres => connect(&kind.url()?).await?.replay_all(QUEUE).await?,
                StoreKind::Redis => connect_redis(&kind.url()?).await?.replay_all(QUEUE).await?,
            };
            println!("mailboxes fixed; {replayed} dead emails replayed");
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown command {other:?}: demo, relay, worker, enqueue, status or replay"
        )
        .into()),
    }
}

/// Which store the queue lives in: `--store postgres` (the default) or `--store redis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Postgres,
    Redis,
}

impl StoreKind {
    fn parse(name: Option<&str>) -> Result<Self, String> {
        match name {
            None | Some("postgres") => Ok(StoreKind::Postgres),
            Some("redis") => Ok(StoreKind::Redis),
            Some(other) => Err(format!("unknown store {other:?}: postgres or redis")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            StoreKind::Postgres => "postgres",
            StoreKind::Redis => "redis",
        }
    }

    /// The variable holding the store's URL.
    fn url_var(self) -> &'static str {
        match self {
            StoreKind::Postgres => "DATABASE_URL",
            StoreKind::Redis => "REDIS_URL",
        }
    }

    /// The store's URL, which the commands run by hand need.
    fn url(self) -> Result<String, String> {
        std::env::var(self.url_var()).map_err(|_| {
            match self {
                StoreKind::Postgres => {
                    "set DATABASE_URL (postgres://user@host/db) for this command"
                }
                StoreKind::Redis => "set REDIS_URL (redis://host:6379) for this command",
            }
            .to_owned()
        })
    }
}

async fn connect(url: &str) -> Result<PgStore, brigade::queue::StoreError> {
    PgStore::builder(url).schema(SCHEMA).connect().await
}

async fn connect_redis(url: &str) -> Result<RedisStore, brigade::queue::StoreError> {
    RedisStore::builder(url).prefix(SCHEMA).connect().await
}

/// What the demo does differently on each store.
trait DemoStore: Store {
    /// Enqueues the campaign's emails, all or none.
    async fn enqueue_campaign(
        &self,
        campaign: &str,
        emails: Vec<NewJob>,
    ) -> Result<usize, Box<dyn std::error::Error>>;

    /// How many emails `worker` holds leases on.
    async fn held_by(&self, worker: &str) -> Result<u64, Box<dyn std::error::Error>>;
}

impl DemoStore for PgStore {
    /// The campaign row and its emails commit together or not at all.
    async fn enqueue_campaign(
        &self,
        campaign: &str,
        emails: Vec<NewJob>,
    ) -> Result<usize, Box<dyn std::error::Error>> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.campaigns (name text PRIMARY KEY, emails int NOT NULL)"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO {SCHEMA}.campaigns (name, emails) VALUES ($1, $2)"
        ))
        .bind(campaign)
        .bind(EMAILS as i32)
        .execute(&mut *tx)
        .await?;
        let enqueued = self
            .enqueue_batch_in(&mut tx, emails)
            .await
            .map_err(|error| error.to_string())?;
        tx.commit().await?;
        println!(
            "campaign {campaign}: {} emails enqueued in one transaction",
            enqueued.len()
        );
        Ok(enqueued.len())
    }

    async fn held_by(&self, worker: &str) -> Result<u64, Box<dyn std::error::Error>> {
        let held: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {SCHEMA}.jobs WHERE lease_owner = $1 AND state = 'running'"
        ))
        .bind(worker)
        .fetch_one(self.pool())
        .await?;
        Ok(held.unsigned_abs())
    }
}

/// `XPENDING key group`: the entries pending, the smallest and greatest id, and how many
/// each consumer holds.
type PendingSummary = (u64, Option<String>, Option<String>, Vec<(String, String)>);

impl DemoStore for RedisStore {
    /// One batch: a single script adds every email or none.
    async fn enqueue_campaign(
        &self,
        campaign: &str,
        emails: Vec<NewJob>,
    ) -> Result<usize, Box<dyn std::error::Error>> {
        let enqueued = self
            .enqueue_batch(emails)
            .await
            .map_err(|error| error.to_string())?;
        println!(
            "campaign {campaign}: {} emails enqueued in one batch",
            enqueued.len()
        );
        Ok(enqueued.len())
    }

    /// The worker's entries in the pending entries list of the emails' stream (they all
    /// have priority 0).
    async fn held_by(&self, worker: &str) -> Result<u64, Box<dyn std::error::Error>> {
        let mut conn = self.connection();
        // XPENDING's summary: count, smallest id, greatest id, then [consumer, count] pairs.
        let summary: PendingSummary = redis::cmd("XPENDING")
            .arg(format!("{SCHEMA}:{{{QUEUE}}}:ready:0"))
            .arg("workers")
            .query_async(&mut conn)
            .await?;
        let (_, _, _, consumers) = summary;
        Ok(consumers
            .iter()
            .find(|(name, _)| name == worker)
            .and_then(|(_, count)| count.parse().ok())
            .unwrap_or(0))
    }
}

/// Enqueues the campaign, all or nothing. Every 50th user's mailbox bounces.
async fn enqueue<S: DemoStore>(store: &S) -> Result<(), Box<dyn std::error::Error>> {
    let campaign = format!("winback-{}", std::process::id());
    let emails: Vec<NewJob> = (1..=EMAILS)
        .map(|user_id| {
            let domain = if user_id % 50 == 0 {
                relay::BOUNCING_DOMAIN
            } else {
                "example.com"
            };
            let email = Email {
                campaign: campaign.clone(),
                user_id,
                to: format!("user{user_id}@{domain}"),
                subject: "We miss you".to_owned(),
            };
            // The unique key makes a second enqueue of the same campaign a no-op.
            let options = EnqueueOptions::new()
                .max_attempts(5)
                .unique_key(format!("{campaign}/{user_id}"));
            Ok(NewJob::new(QUEUE, serde_json::to_value(email)?).with_options(options))
        })
        .collect::<Result<_, serde_json::Error>>()?;
    store.enqueue_campaign(&campaign, emails).await?;
    Ok(())
}

async fn status<S: Store>(store: &S) -> Result<(), Box<dyn std::error::Error>> {
    let counts = store.counts(QUEUE).await?;
    println!("{counts:?}");
    for dead in store.dead_jobs(QUEUE, 5).await? {
        println!("dead {}: {}", dead.id, dead.last_error.unwrap_or_default());
    }
    Ok(())
}

/// The whole story in one command, on a clean slate of the chosen store.
async fn demo(kind: StoreKind) -> Result<(), Box<dyn std::error::Error>> {
    match kind {
        StoreKind::Postgres => {
            let (url, _cluster) = match std::env::var("DATABASE_URL") {
                Ok(url) => (url, None),
                Err(_) => {
                    println!("no DATABASE_URL: starting a throwaway PostgreSQL");
                    let cluster = tokio::task::spawn_blocking(LocalCluster::shared).await??;
                    (cluster.url("postgres"), Some(cluster))
                }
            };
            let admin = sqlx::PgPool::connect(&url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                .execute(&admin)
                .await?;
            run_demo(connect(&url).await?, &url, kind).await
        }
        StoreKind::Redis => {
            let url = match std::env::var("REDIS_URL") {
                Ok(url) => url,
                Err(_) => {
                    println!("no REDIS_URL: starting a throwaway redis-server");
                    tokio::task::spawn_blocking(LocalServer::shared)
                        .await??
                        .url()
                }
            };
            let store = connect_redis(&url).await?;
            let mut conn = store.connection();
            let mut cursor = 0_u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{SCHEMA}:*"))
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    let _: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            run_demo(store, &url, kind).await
        }
    }
}

async fn run_demo<S: DemoStore>(
    store: S,
    url: &str,
    kind: StoreKind,
) -> Result<(), Box<dyn std::error::Error>> {
    let deliveries = Arc::new(relay::Deliveries::default());
    let relay = relay::start("127.0.0.1:0", Arc::clone(&deliveries))
        .await?
        .to_string();
    println!("mail relay on http://{relay}");
    enqueue(&store).await?;

    let exe = std::env::current_exe()?;
    let spawn = |n: usize| -> std::io::Result<Child> {
        Command::new(&exe)
            .args([
                "worker",
                "--relay",
                &relay,
                "--name",
                &format!("worker-{n}"),
                "--store",
                kind.name(),
            ])
            .env(kind.url_var(), url)
            .spawn()
    };
    let mut workers = (1..=WORKERS).map(spawn).collect::<Result<Vec<_>, _>>()?;
    println!("{WORKERS} worker processes started, 50 emails/s between them");

    let started = Instant::now();
    let mut killed = false;
    let mut replayed = false;
    let deadline = started + Duration::from_secs(300);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let counts = store.counts(QUEUE).await?;
        let (delivered, repeats) = deliveries.tally();
        println!(
            "{:>4.0} s  sent {:>4}/{EMAILS}  waiting {:>4}  running {:>2}  retrying {:>2}  dead {:>2}  relay: {delivered} delivered, {repeats} twice",
            started.elapsed().as_secs_f64(),
            counts.completed,
            counts.available,
            counts.running,
            counts.scheduled,
            counts.dead,
        );
        if !killed && counts.completed >= EMAILS / 3 {
            let victim = &mut workers[1];
            let held = store.held_by("worker-2").await?;
            victim.kill()?; // SIGKILL: no shutdown, no goodbye
            victim.wait()?;
            killed = true;
            println!(
                "killed worker-2 with SIGKILL while it held {held} emails; they come back when its leases run out"
            );
        }
        if counts.live() == 0 && !replayed {
            println!("all sent but {} dead emails:", counts.dead);
            for dead in store.dead_jobs(QUEUE, 3).await? {
                println!("  {}: {}", dead.id, dead.last_error.unwrap_or_default());
            }
            deliveries
                .fixed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let count = store.replay_all(QUEUE).await?;
            println!("mailboxes fixed; {count} dead emails replayed");
            replayed = true;
            continue;
        }
        if counts.live() == 0 && replayed {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("not done after 5 minutes: {counts:?}").into());
        }
    }

    for worker in &mut workers {
        if matches!(worker.try_wait(), Ok(None)) {
            // SIGTERM: each worker stops claiming and finishes what it runs.
            Command::new("kill")
                .args(["-TERM", &worker.id().to_string()])
                .status()?;
        }
    }
    for mut worker in workers {
        worker.wait()?;
    }
    let counts = store.counts(QUEUE).await?;
    let (delivered, repeats) = deliveries.tally();
    println!(
        "done in {:.1} s: {} of {EMAILS} emails sent, {} dead; the relay delivered {delivered} distinct emails",
        started.elapsed().as_secs_f64(),
        counts.completed,
        counts.dead
    );
    if repeats > 0 {
        // At least once: worker-2 sent these and died before its ack reached the store.
        println!(
            "{repeats} emails went out twice: sent by worker-2 just before SIGKILL, never acknowledged"
        );
    }
    if delivered as u64 != EMAILS || counts.completed != EMAILS {
        return Err("an email was lost".into());
    }
    Ok(())
}
