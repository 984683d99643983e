//! `brigade-chaos producer`: enqueues the run's jobs in bursts, spread over the fault
//! schedule, and writes every acknowledged enqueue (`enqueued job=<id> n=<n>`) to its
//! ledger. An enqueue whose answer was lost (the store crashed mid-commit) is retried and
//! may leave a second row with the same `n`; only acknowledged ids count as promises.
//!
//! Small batches carry half the jobs in a steady flow spread over `--seconds`; bursts carry
//! the other half on top of it. Bursts hold short jobs only; small batches hold now and then
//! a job of about a second and, with `--long-every-ms MS`, about one job every MS of the
//! flow that outlasts the lease (see [`ChaosJob`]).
//!
//! Batches take three paths: `Queue::enqueue_batch`, one by one inside a transaction of
//! the producer's with the store's `enqueue_in`, and (one in ten of those) a transaction
//! that is rolled back on purpose, whose jobs must never appear (`rolled-back n=<n>`).
//! Redis has no transactional enqueue: there every batch takes the first path.
//! Poison jobs (`max_attempts` 3) and jobs that fail every run (`--always-failing`,
//! `max_attempts` 3) are enqueued alone, evenly spaced through the run; one job in ten of
//! the others fails its first attempt (see [`ChaosJob`]). SIGHUP asks for a job past the
//! workers' grace, sent alone at once, ahead of the backlog: a run a worker fault can find
//! going. SIGUSR2 asks for the same and a burst after it: the orchestrator's target for a
//! graceful restart, and claims waiting at the rate limit for the restart to give back.
//!
//! Every job is accounted for. Before the store sees a batch, an `offer first=.. last=..`
//! line names the jobs it covers (with the single jobs among them); each then ends in one
//! line of its own: `enqueued`, `rolled-back` or `gave-up`. An enqueue whose answer holds
//! fewer or more ids than it was given jobs writes a `short-answer` line (the ids it did
//! answer are written as acknowledged, in order: what a caller would take them for). The
//! checker holds every `n` below `--jobs` to one of these ends.
//!
//! With `--hold-ms`, each transaction stays open that long once written, between a
//! `tx-hold` and a `tx-end` line: the window in which the orchestrator kills the producer
//! inside its own transaction. Restarted with `--resume`, the producer continues after the
//! last job its ledger names — offered ones included: the jobs of a batch whose answer the
//! kill cut off are not offered again; each is then a row no acknowledgement covers (the
//! batch committed) or no row at all, and the checker counts them apart.

use std::path::Path as FilePath;
use std::time::{Duration, Instant};

use brigade_queue::{EnqueueOptions, Enqueued};

use crate::cli::ProducerOptions;
use crate::client::Client;
use crate::job::ChaosJob;
use crate::ledger::LedgerWriter;
use crate::settings;

/// How long one batch is retried while the store is down before the producer gives up on
/// it (it writes `gave-up`: those jobs were never promised).
const RETRY_FOR: Duration = Duration::from_secs(30);
/// The largest burst: more than the rate limit lets start in a second, so it binds.
const MAX_BURST: u64 = 250;
/// The burst sent after a job past the grace, before a graceful restart: past the rate
/// limit's burst allowance (20), so that the workers hold claims waiting at the limit when
/// the SIGTERM comes, and small, so that the restarts leave most of the bursts' budget to
/// the rest of the run (full-size bursts there once spent it all in the first third).
const RESTART_BURST: u64 = 50;
/// The share of the jobs that small batches carry; bursts carry the rest.
const SMALL_SHARE: f64 = 0.5;
/// The mean size of a small batch (1–20 jobs) and of a burst (100–`MAX_BURST`).
const MEAN_SMALL: f64 = 10.5;
const MEAN_BURST: f64 = 175.0;

/// How a batch reaches the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Batch,
    Transaction,
    RolledBack,
}

/// Enqueues `options.jobs` jobs, then exits.
pub(crate) async fn run(options: ProducerOptions) -> Result<(), String> {
    let first = if options.resume {
        resume_after(&options.ledger)?
    } else {
        0
    };
    let ledger = LedgerWriter::open(&options.ledger)?;
    // SIGUSR1 asks for a transaction now (the orchestrator's window to kill the producer
    // inside one). Watched before `hello`: the orchestrator signals only after that line,
    // as the signal's default action would end the process.
    let mut asked = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .map_err(|error| format!("cannot watch SIGUSR1: {error}"))?;
    // SIGUSR2 asks for a job past the workers' grace now, and a burst after it (before a
    // graceful restart); SIGHUP for the job alone (before any other worker fault, so that
    // it finds a run going).
    let mut asked_past_grace =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())
            .map_err(|error| format!("cannot watch SIGUSR2: {error}"))?;
    let mut asked_long_run = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|error| format!("cannot watch SIGHUP: {error}"))?;
    let mut in_transaction_now = false;
    // A burst asked for with the job past the grace: the restarted worker then holds claims
    // waiting at the rate limit too, which its stop must give back unstarted.
    let mut burst_now = false;
    ledger.record(
        "hello",
        &[
            ("pid", std::process::id().to_string()),
            ("from", first.to_string()),
        ],
    );
    let store = Client::connect_patiently(&options.url, 2, false, RETRY_FOR).await?;
    if let Some(pragmas) = store.sqlite_pragmas(2).await {
        ledger.record("pragmas", &pragmas.fields("producer"));
    }
    let transactions = store_has_transactions(&options.url);
    let hold = Duration::from_millis(options.hold_ms);
    // A resumed producer draws a workload of its own: the seed still fixes it.
    let mut rng = fastrand::Rng::with_seed(options.seed.wrapping_add(first));
    let poison_at: Vec<u64> = (1..=u64::from(options.poison))
        .map(|k| k * options.jobs / (u64::from(options.poison) + 1))
        .collect();
    // Halfway between poison jobs' places (for as many of each), so that none is both.
    let always_at: Vec<u64> = (1..=u64::from(options.always_failing))
        .map(|k| (2 * k - 1) * options.jobs / (2 * u64::from(options.always_failing) + 2))
        .filter(|n| !poison_at.contains(n))
        .collect();
    // Small batches carry a steady flow, spread evenly over the time given; bursts come on
    // top of it, from a budget of their own, so the queue is never idle for long and a
    // fault finds work to hit. Long jobs (if asked for) are every so many jobs of that
    // flow, which the seed fixes.
    let started = Instant::now();
    let left = options.jobs.saturating_sub(first);
    let mut small_left = ((left as f64 * SMALL_SHARE).round() as u64).min(left);
    let mut burst_left = left - small_left;
    let per_small_job =
        Duration::from_secs_f64(options.seconds.max(0.1) / small_left.max(1) as f64);
    let long_every = Duration::from_millis(options.long_every_ms);
    let long_stride = (long_every.as_secs_f64() / per_small_job.as_secs_f64().max(1e-6))
        .ceil()
        .max(1.0) as u64;
    let mut small_sent: u64 = 0;
    let mut next = first;
    while next < options.jobs {
        // Mostly small batches, now and then a burst bigger than the rate limit lets start
        // in a second; what is left of the bursts' budget goes once the flow's is spent.
        // An asked-for transaction comes out of the bursts' budget while there is one: taken
        // from the flow's, it would be sent ahead of its time and leave the queue idle for as
        // long after it.
        let asked_burst = std::mem::take(&mut burst_now);
        let burst = burst_left > 0
            && (in_transaction_now
                || asked_burst
                || small_left == 0
                || rng.f64() < burst_chance(small_left, burst_left));
        let size = if burst && asked_burst {
            RESTART_BURST.min(burst_left)
        } else if burst {
            rng.u64(100..=MAX_BURST).min(burst_left)
        } else {
            rng.u64(1..=20).min(small_left)
        };
        let size = size.min(options.jobs - next).max(1);
        // An asked-for transaction is a small one, so it does not eat the run's jobs.
        let size = if in_transaction_now {
            size.min(20)
        } else {
            size
        };
        if burst {
            burst_left = burst_left.saturating_sub(size);
        } else {
            small_left = small_left.saturating_sub(size);
        }
        let mut jobs: Vec<ChaosJob> = (next..next + size)
            .map(|n| {
                if burst {
                    return ChaosJob::short(n, &mut rng);
                }
                small_sent += 1;
                if options.long_every_ms > 0 && small_sent % long_stride == long_stride / 2 {
                    ChaosJob::long(n, &mut rng)
                } else {
                    ChaosJob::random(n, &mut rng)
                }
            })
            .collect();
        let mut singles = Vec::new();
        for job in &jobs {
            if poison_at.contains(&job.n) {
                singles.push((ChaosJob::poison(job.n), settings::POISON_MAX_ATTEMPTS));
            } else if always_at.contains(&job.n) {
                singles.push((
                    ChaosJob::always_failing(job.n, &mut rng),
                    settings::ALWAYS_FAILING_MAX_ATTEMPTS,
                ));
            }
        }
        jobs.retain(|job| !singles.iter().any(|(single, _)| single.n == job.n));
        // Written before the store sees any of them: a kill from here on leaves these jobs
        // offered, and each of them must end in a line of its own or be counted cut off.
        offer(&ledger, next, next + size - 1);
        next += size;

        for (job, max_attempts) in singles {
            let bounded = EnqueueOptions::new().max_attempts(max_attempts);
            let enqueued = retrying(&ledger, &[job], || async {
                store
                    .enqueue_with(job, bounded.clone())
                    .await
                    .map(|enqueued| vec![enqueued])
            })
            .await;
            note(&ledger, &[job], enqueued, "single");
        }
        // A batch of single jobs only has nothing left to send (nor a transaction to open
        // when one was asked for: the next batch opens it).
        let sent_batch = !jobs.is_empty();
        if sent_batch {
            let path = match rng.u8(0..10) {
                _ if !transactions => Path::Batch,
                _ if in_transaction_now => Path::Transaction,
                0..=5 => Path::Batch,
                6..=8 => Path::Transaction,
                _ => Path::RolledBack,
            };
            match path {
                Path::Batch => {
                    let enqueued = retrying(&ledger, &jobs, || async {
                        store.enqueue_batch(jobs.clone()).await
                    })
                    .await;
                    note(&ledger, &jobs, enqueued, "batch");
                }
                Path::Transaction => {
                    let enqueued = retrying(&ledger, &jobs, || {
                        store.in_transaction(&jobs, true, hold, &ledger)
                    })
                    .await;
                    note(&ledger, &jobs, enqueued, "transaction");
                }
                Path::RolledBack => {
                    // Rolled back or failed: either way none of these may ever appear.
                    let _ = store.in_transaction(&jobs, false, hold, &ledger).await;
                    for job in &jobs {
                        ledger.record("rolled-back", &[("n", job.n.to_string())]);
                    }
                }
            }
        }
        // The flow is paced by its own jobs; a burst adds no pause, so it comes on top of
        // the flow instead of stopping it.
        let due =
            started + per_small_job.saturating_mul(u32::try_from(small_sent).unwrap_or(u32::MAX));
        in_transaction_now &= !sent_batch;
        loop {
            // A job past the grace asked for: sent at once, alone, with a burst after it
            // when asked (both out of the bursts' budget while it lasts, so the flow keeps
            // its pace; with none left, the wait goes on).
            let burst_after = tokio::select! {
                () = tokio::time::sleep_until(due.into()) => break,
                _ = asked.recv() => {
                    in_transaction_now = true;
                    break;
                }
                _ = asked_past_grace.recv() => true,
                _ = asked_long_run.recv() => false,
            };
            if next < options.jobs {
                send_past_grace(&store, &ledger, &mut rng, next).await;
                next += 1;
                take_one(&mut burst_left, &mut small_left);
            }
            if burst_after && burst_left > 0 {
                burst_now = true;
                break;
            }
        }
    }
    ledger.record("finished", &[("jobs", options.jobs.to_string())]);
    Ok(())
}

/// Sends job `n` past the workers' grace, alone and ahead of the backlog: the run a
/// graceful restart must stop and give back.
async fn send_past_grace(store: &Client, ledger: &LedgerWriter, rng: &mut fastrand::Rng, n: u64) {
    let job = ChaosJob::past_grace(n, rng);
    offer(ledger, n, n);
    let ahead = EnqueueOptions::new().priority(settings::PAST_GRACE_PRIORITY);
    let enqueued = retrying(ledger, &[job], || async {
        store
            .enqueue_with(job, ahead.clone())
            .await
            .map(|enqueued| vec![enqueued])
    })
    .await;
    note(ledger, &[job], enqueued, "single");
}

/// Counts a job sent on request against the bursts' budget while it lasts, then against
/// the flow's: the run's jobs are spent by the end of the flow, not before it.
fn take_one(burst_left: &mut u64, small_left: &mut u64) {
    if *burst_left > 0 {
        *burst_left -= 1;
    } else {
        *small_left = small_left.saturating_sub(1);
    }
}

/// The chance that the next batch is a burst: the bursts left among the batches left, so
/// that they come spread through the flow.
fn burst_chance(small_left: u64, burst_left: u64) -> f64 {
    let bursts = burst_left as f64 / MEAN_BURST;
    let batches = (small_left as f64 / MEAN_SMALL).max(1.0);
    bursts / (batches + bursts)
}

/// The first job a restarted producer offers: the one after the highest its ledger names
/// (offered, enqueued, rolled back, given up, or inside a transaction that a kill cut
/// short). A job offered and cut off by the kill is not offered again: its batch may have
/// committed, and the checker counts it as cut off, with or without a row.
fn resume_after(ledger: &FilePath) -> Result<u64, String> {
    if !ledger.exists() {
        return Ok(0);
    }
    let (lines, _) = crate::ledger::read(ledger)?;
    Ok(lines
        .iter()
        .filter_map(|line| line.number("n").or_else(|| line.number("last")))
        .max()
        .map_or(0, |n| n + 1))
}

fn store_has_transactions(url: &str) -> bool {
    crate::store_kind::StoreKind::of_url(url).is_ok_and(|kind| kind.has_transactions())
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

/// Writes that the jobs `first..=last` are about to be offered to the store.
fn offer(ledger: &LedgerWriter, first: u64, last: u64) {
    ledger.record(
        "offer",
        &[("first", first.to_string()), ("last", last.to_string())],
    );
}

/// Writes the acknowledged enqueues of `jobs`, or that they were given up. An answer that
/// does not hold one id per job is written as a `short-answer` line first: which job an id
/// belongs to is then unknown, and a job without one was promised nothing.
fn note(ledger: &LedgerWriter, jobs: &[ChaosJob], enqueued: Option<Vec<Enqueued>>, via: &str) {
    let Some(enqueued) = enqueued else {
        for job in jobs {
            ledger.record("gave-up", &[("n", job.n.to_string())]);
        }
        return;
    };
    if enqueued.len() != jobs.len() {
        let ids: Vec<String> = enqueued.iter().map(|e| e.id.get().to_string()).collect();
        ledger.record(
            "short-answer",
            &[
                ("first", jobs.first().map_or(0, |job| job.n).to_string()),
                ("last", jobs.last().map_or(0, |job| job.n).to_string()),
                ("jobs", jobs.len().to_string()),
                ("ids", enqueued.len().to_string()),
                ("answered", ids.join(",")),
                ("via", via.to_owned()),
            ],
        );
    }
    for (job, enqueued) in jobs.iter().zip(enqueued) {
        ledger.record(
            "enqueued",
            &[
                ("job", enqueued.id.get().to_string()),
                ("n", job.n.to_string()),
                ("poison", u8::from(job.poison).to_string()),
                ("fails", job.fails.to_string()),
                ("via", via.to_owned()),
            ],
        );
    }
}
