//! A batch email sender that survives crashes: 1,000 emails enqueued in one transaction,
//! sent by three worker processes under a global 50-per-second limit. One worker is killed
//! with SIGKILL mid-run and its emails are still sent; emails to mailboxes that do not
//! exist fail for good, land dead, and are replayed once fixed.
//!
//! The seeds' "Batch Email Sender", moved from one process's memory to a durable queue: a
//! SQLite file by default (nothing to install), PostgreSQL when `DATABASE_URL` is set, Redis
//! when `REDIS_URL` is (or say `--store sqlite|postgres|redis`).
//!
//! ```sh
//! cargo run --example distributed_email_sender                         # everything, in one command
//! cargo run --example distributed_email_sender -- demo --store postgres  # on a throwaway PostgreSQL
//! cargo run --example distributed_email_sender -- demo --store redis     # on a throwaway redis-server
//! ```
//!
//! Or by hand, one terminal each, all on the same store (the SQLite file is
//! `$BRIGADE_SQLITE_FILE`, by default `email_demo.db` in the temporary directory):
//!
//! ```sh
//! cargo run --example distributed_email_sender -- relay    # the mail relay on 127.0.0.1:2525
//! cargo run --example distributed_email_sender -- worker   # as many as you like
//! cargo run --example distributed_email_sender -- enqueue  # 1,000 emails, one transaction
//! cargo run --example distributed_email_sender -- status   # counts and dead letters
//! cargo run --example distributed_email_sender -- replay   # fix the mailboxes, replay the dead
//! ```

mod relay;
mod stores;
mod worker;

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::queue::{EnqueueOptions, NewJob, Store};
use serde::{Deserialize, Serialize};
use stores::{DemoStore, StoreKind, with_store};

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
    let kind = StoreKind::choose(flag("--store").as_deref())?;
    match args.first().map(String::as_str) {
        None | Some("demo") | Some("--store") => demo(kind).await,
        Some("worker") => {
            let name = flag("--name").unwrap_or_else(|| format!("worker-{}", std::process::id()));
            with_store!(kind, &kind.location()?, |store| worker::run(
                store, &relay, &name
            )
            .await)
        }
        Some("relay") => {
            let addr = relay::start(&relay, Arc::default()).await?;
            println!("mail relay on http://{addr}; Ctrl-C to stop");
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Some("enqueue") => with_store!(kind, &kind.location()?, |store| enqueue(&store).await),
        Some("status") => with_store!(kind, &kind.location()?, |store| status(&store).await),
        Some("replay") => {
            reqwest::Client::new()
                .post(format!("http://{relay}/fix"))
                .send()
                .await?;
            let replayed = with_store!(kind, &kind.location()?, |store| store
                .replay_all(QUEUE)
                .await?);
            println!("mailboxes fixed; {replayed} dead emails replayed");
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown command {other:?}: demo, relay, worker, enqueue, status or replay"
        )
        .into()),
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
    let location = kind.fresh_location().await?;
    with_store!(kind, &location, |store| run_demo(store, &location, kind)
        .await)
}

async fn run_demo<S: DemoStore>(
    store: S,
    location: &str,
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
            .env(kind.location_var(), location)
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
