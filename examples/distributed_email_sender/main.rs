//! A batch email sender that survives crashes: 1,000 emails enqueued in one PostgreSQL
//! transaction, sent by three worker processes under a global 50-per-second limit. One
//! worker is killed with SIGKILL mid-run and its emails are still sent; emails to
//! mailboxes that do not exist fail for good, land dead, and are replayed once fixed.
//!
//! The seeds' "Batch Email Sender", moved from one process's memory to a durable queue.
//!
//! ```sh
//! cargo run --example distributed_email_sender            # everything, in one command
//! ```
//!
//! Or by hand, one terminal each (`DATABASE_URL` must then be set):
//!
//! ```sh
//! cargo run --example distributed_email_sender -- relay    # the mail relay on 127.0.0.1:2525
//! cargo run --example distributed_email_sender -- worker   # as many as you like
//! cargo run --example distributed_email_sender -- enqueue  # 1,000 emails, one transaction
//! cargo run --example distributed_email_sender -- status   # counts and dead letters
//! cargo run --example distributed_email_sender -- replay   # fix the mailboxes, replay the dead
//! ```
//!
//! With no `DATABASE_URL`, the one-command run starts a throwaway PostgreSQL from the
//! machine's server binaries.

mod relay;
mod worker;

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::postgres::{LocalCluster, PgStore};
use brigade::queue::{EnqueueOptions, NewJob, Store};
use serde::{Deserialize, Serialize};

/// The queue the emails go through.
const QUEUE: &str = "emails";
/// The schema holding the demo's queue (and its campaigns table).
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
    match args.first().map(String::as_str) {
        None | Some("demo") => demo().await,
        Some("worker") => {
            let name = flag("--name").unwrap_or_else(|| format!("worker-{}", std::process::id()));
            worker::run(&database_url()?, &relay, &name).await
        }
        Some("relay") => {
            let addr = relay::start(&relay, Arc::default()).await?;
            println!("mail relay on http://{addr}; Ctrl-C to stop");
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Some("enqueue") => {
            let store = connect(&database_url()?).await?;
            enqueue(&store).await?;
            Ok(())
        }
        Some("status") => status(&connect(&database_url()?).await?).await,
        Some("replay") => {
            reqwest::Client::new()
                .post(format!("http://{relay}/fix"))
                .send()
                .await?;
            let replayed = connect(&database_url()?).await?.replay_all(QUEUE).await?;
            println!("mailboxes fixed; {replayed} dead emails replayed");
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown command {other:?}: demo, relay, worker, enqueue, status or replay"
        )
        .into()),
    }
}

/// `DATABASE_URL`, which the commands run by hand need.
fn database_url() -> Result<String, String> {
    std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL (postgres://user@host/db) for this command".to_owned())
}

async fn connect(url: &str) -> Result<PgStore, brigade::queue::StoreError> {
    PgStore::builder(url).schema(SCHEMA).connect().await
}

/// Enqueues the campaign: the campaign row and its 1,000 emails commit together or not at
/// all. Every 50th user's mailbox bounces.
async fn enqueue(store: &PgStore) -> Result<(), Box<dyn std::error::Error>> {
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
    let mut tx = store.pool().begin().await?;
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.campaigns (name text PRIMARY KEY, emails int NOT NULL)"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO {SCHEMA}.campaigns (name, emails) VALUES ($1, $2)"
    ))
    .bind(&campaign)
    .bind(EMAILS as i32)
    .execute(&mut *tx)
    .await?;
    let enqueued = store
        .enqueue_batch_in(&mut tx, emails)
        .await
        .map_err(|error| error.to_string())?;
    tx.commit().await?;
    println!(
        "campaign {campaign}: {} emails enqueued in one transaction",
        enqueued.len()
    );
    Ok(())
}

async fn status(store: &PgStore) -> Result<(), Box<dyn std::error::Error>> {
    let counts = store.counts(QUEUE).await?;
    println!("{counts:?}");
    for dead in store.dead_jobs(QUEUE, 5).await? {
        println!("dead {}: {}", dead.id, dead.last_error.unwrap_or_default());
    }
    Ok(())
}

/// The whole story in one command.
async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            println!("no DATABASE_URL: starting a throwaway PostgreSQL");
            let cluster = tokio::task::spawn_blocking(LocalCluster::shared).await??;
            (cluster.url("postgres"), Some(cluster))
        }
    };
    // A clean slate for the demo's own schema.
    let admin = sqlx::PgPool::connect(&url).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        .execute(&admin)
        .await?;
    let store = connect(&url).await?;

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
            ])
            .env("DATABASE_URL", &url)
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
            let held: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {SCHEMA}.jobs WHERE lease_owner = 'worker-2' AND state = 'running'"
            ))
            .fetch_one(&admin)
            .await?;
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
        // At least once: worker-2 sent these and died before its ack reached the database.
        println!(
            "{repeats} emails went out twice: sent by worker-2 just before SIGKILL, never acknowledged"
        );
    }
    if delivered as u64 != EMAILS || counts.completed != EMAILS {
        return Err("an email was lost".into());
    }
    Ok(())
}
