//! `brigade-chaos producer`: enqueues the run's jobs in bursts, spread over the fault
//! schedule, and writes every acknowledged enqueue (`enqueued job=<id> n=<n>`) to its
//! ledger. An enqueue whose answer was lost (the store crashed mid-commit) is retried and
//! may leave a second row with the same `n`; only acknowledged ids count as promises.
//!
//! Batches take three paths: [`Queue::enqueue_batch`], one by one inside a transaction of
//! the producer's with [`PgStore::enqueue_in`], and (one in ten of those) a transaction
//! that is rolled back on purpose, whose jobs must never appear (`rolled-back n=<n>`).
//! Poison jobs (`max_attempts` 3) are enqueued alone, evenly spaced through the run.

use std::time::{Duration, Instant};

use brigade_postgres::PgStore;
use brigade_queue::{EnqueueOptions, Enqueued, Queue};

use crate::cli::ProducerOptions;
use crate::job::ChaosJob;
use crate::ledger::LedgerWriter;
use crate::settings;

/// How long one batch is retried while the store is down before the producer gives up on
/// it (it writes `gave-up`: those jobs were never promised).
const RETRY_FOR: Duration = Duration::from_secs(30);
/// The largest burst: more than the rate limit lets start in a second, so it binds.
const MAX_BURST: u64 = 250;

/// How a batch reaches the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Batch,
    Transaction,
    RolledBack,
}

/// Enqueues `options.jobs` jobs, then exits.
pub(crate) async fn run(options: ProducerOptions) -> Result<(), String> {
    let ledger = LedgerWriter::open(&options.ledger)?;
    let store = connect(&options.url).await?;
    let queue: Queue<PgStore, ChaosJob> = Queue::new(store.clone(), settings::QUEUE);
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let poison_at: Vec<u64> = (1..=u64::from(options.poison))
        .map(|k| k * options.jobs / (u64::from(options.poison) + 1))
        .collect();
    let per_job = Duration::from_secs_f64(options.seconds.max(0.1) / options.jobs.max(1) as f64);
    let started = Instant::now();
    let mut next = 0u64;
    while next < options.jobs {
        // Mostly small batches, now and then a burst bigger than the rate limit lets start
        // in a second.
        let size = if rng.u8(0..8) == 0 {
            rng.u64(100..=MAX_BURST)
        } else {
            rng.u64(1..=20)
        };
        let size = size.min(options.jobs - next);
        let mut jobs: Vec<ChaosJob> = (next..next + size)
            .map(|n| ChaosJob::random(n, &mut rng))
            .collect();
        let poison: Vec<ChaosJob> = jobs
            .iter()
            .filter(|job| poison_at.contains(&job.n))
            .map(|job| ChaosJob::poison(job.n))
            .collect();
        jobs.retain(|job| !poison_at.contains(&job.n));
        next += size;

        for job in poison {
            let options = EnqueueOptions::new().max_attempts(settings::POISON_MAX_ATTEMPTS);
            let enqueued = retrying(&ledger, &[job], || async {
                queue
                    .enqueue_with(job, options.clone())
                    .await
                    .map(|enqueued| vec![enqueued])
                    .map_err(|error| error.to_string())
            })
            .await;
            note(&ledger, &[job], enqueued, "single");
        }
        let path = match rng.u8(0..10) {
            0..=5 => Path::Batch,
            6..=8 => Path::Transaction,
            _ => Path::RolledBack,
        };
        match path {
            Path::Batch => {
                let enqueued = retrying(&ledger, &jobs, || async {
                    queue
                        .enqueue_batch(jobs.clone())
                        .await
                        .map_err(|error| error.to_string())
                })
                .await;
                note(&ledger, &jobs, enqueued, "batch");
            }
            Path::Transaction => {
                let enqueued = retrying(&ledger, &jobs, || {
                    in_transaction(&store, &queue, &jobs, true)
                })
                .await;
                note(&ledger, &jobs, enqueued, "transaction");
            }
            Path::RolledBack => {
                // Rolled back or failed: either way none of these may ever appear.
                let _ = in_transaction(&store, &queue, &jobs, false).await;
                for job in &jobs {
                    ledger.record("rolled-back", &[("n", job.n.to_string())]);
                }
            }
        }
        // Pace by jobs, not batches: a big batch is followed by a longer pause, so the
        // queue sees bursts on top of a steady average.
        let due = started + per_job.saturating_mul(u32::try_from(next).unwrap_or(u32::MAX));
        tokio::time::sleep_until(due.into()).await;
    }
    ledger.record("finished", &[("jobs", options.jobs.to_string())]);
    Ok(())
}

/// Enqueues `jobs` one by one inside one transaction, committing it when `commit`.
async fn in_transaction(
    store: &PgStore,
    queue: &Queue<PgStore, ChaosJob>,
    jobs: &[ChaosJob],
    commit: bool,
) -> Result<Vec<Enqueued>, String> {
    let mut tx = store
        .pool()
        .begin()
        .await
        .map_err(|error| error.to_string())?;
    let mut enqueued = Vec::with_capacity(jobs.len());
    for job in jobs {
        let new_job = queue
            .encode(job, EnqueueOptions::new())
            .map_err(|error| error.to_string())?;
        enqueued.push(
            store
                .enqueue_in(&mut tx, new_job)
                .await
                .map_err(|error| error.to_string())?,
        );
    }
    if commit {
        tx.commit().await.map_err(|error| error.to_string())?;
    } else {
        tx.rollback().await.map_err(|error| error.to_string())?;
    }
    Ok(enqueued)
}

/// Runs `attempt` until it succeeds or [`RETRY_FOR`] has passed.
async fn retrying<F, Fut>(
    ledger: &LedgerWriter,
    jobs: &[ChaosJob],
    attempt: F,
) -> Option<Vec<Enqueued>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Enqueued>, String>>,
{
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        match attempt().await {
            Ok(enqueued) => return Some(enqueued),
            Err(error) if Instant::now() < deadline => {
                let first = jobs.first().map_or(0, |job| job.n);
                ledger.record(
                    "retry",
                    &[
                        ("n", first.to_string()),
                        ("error", error.replace(char::is_whitespace, "_")),
                    ],
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(_) => return None,
        }
    }
}

/// Writes the acknowledged enqueues of `jobs`, or that they were given up.
fn note(ledger: &LedgerWriter, jobs: &[ChaosJob], enqueued: Option<Vec<Enqueued>>, via: &str) {
    let Some(enqueued) = enqueued else {
        for job in jobs {
            ledger.record("gave-up", &[("n", job.n.to_string())]);
        }
        return;
    };
    for (job, enqueued) in jobs.iter().zip(enqueued) {
        ledger.record(
            "enqueued",
            &[
                ("job", enqueued.id.get().to_string()),
                ("n", job.n.to_string()),
                ("poison", u8::from(job.poison).to_string()),
                ("via", via.to_owned()),
            ],
        );
    }
}

async fn connect(url: &str) -> Result<PgStore, String> {
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        match PgStore::builder(url)
            .max_connections(2)
            .migrate(false)
            .connect()
            .await
        {
            Ok(store) => return Ok(store),
            Err(error) if Instant::now() < deadline => {
                eprintln!("store not reachable yet: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => return Err(format!("store not reachable: {error}")),
        }
    }
}
