//! `brigade-chaos worker`: one worker host. A [`Worker`] on the store under test with a short
//! lease, the shared rate and concurrency limits, and a handler that writes `start` (with
//! the work it plans) before its work and `done` (or `cancelled`, when its token fires)
//! after it; a poison job aborts the process right after its `start` line, and a run the
//! job says fails (see [`ChaosJob::fails`]) writes `failed` after its work and returns an
//! error, for the store to retry or bury.
//!
//! Every second, and once more at a graceful exit, it writes what the worker counted, so
//! the checker can tell a lease this worker lost (or an ack it could not record) from a
//! duplicate no fault explains. SIGTERM is a graceful stop: watched from the start, before
//! the `hello` line (the orchestrator signals only after it), it stops the worker, which
//! gives back what it holds; the process then exits with status 0. On SQLite the process
//! writes the `synchronous` and `journal_mode` its pooled connections run with.

use std::sync::Arc;
use std::time::Duration;

use brigade_core::CancellationToken;
use brigade_queue::{Delivery, Store, Worker, WorkerReport};

use crate::cli::WorkerOptions;
use crate::client::{Client, with_store};
use crate::job::ChaosJob;
use crate::ledger::LedgerWriter;
use crate::settings;

/// How long a (re)started worker keeps trying to reach the store before it gives up: the
/// store may be in the middle of a crash and restart.
const CONNECT_FOR: Duration = Duration::from_secs(60);
/// Connections of each worker's pool.
const CONNECTIONS: u32 = 8;

/// Runs the worker until SIGTERM.
pub(crate) async fn run(options: WorkerOptions) -> Result<(), String> {
    init_logs();
    let ledger = Arc::new(LedgerWriter::open(&options.ledger)?);
    let name = format!("w{}#{}", options.id, options.run);
    // Watched before `hello`: SIGTERM's default action would end the process, and the
    // graceful restart sends it only once that line is written.
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| format!("cannot watch SIGTERM: {error}"))?;
    tokio::spawn(async move {
        terminate.recv().await;
        on_signal.cancel();
    });
    ledger.record(
        "hello",
        &[
            ("worker", name.clone()),
            ("pid", std::process::id().to_string()),
        ],
    );

    let client = Client::connect_patiently(&options.url, CONNECTIONS, false, CONNECT_FOR).await?;
    if let Some(pragmas) = client.sqlite_pragmas(CONNECTIONS).await {
        ledger.record("pragmas", &pragmas.fields(&name));
    }
    with_store!(client, store => serve(store, ledger, name, shutdown).await)
}

/// Runs a worker on `store` until `shutdown` (SIGTERM).
async fn serve<S: Store>(
    store: S,
    ledger: Arc<LedgerWriter>,
    name: String,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let handler_ledger = Arc::clone(&ledger);
    let handler_name: Arc<str> = Arc::from(name.as_str());
    let worker = Worker::builder(store, settings::QUEUE)
        .worker_id(name.clone())
        .concurrency(settings::WORKER_CONCURRENCY)
        .lease(settings::LEASE)
        .heartbeat(settings::HEARTBEAT)
        .sweep(settings::SWEEP)
        .poll(settings::POLL)
        .grace(settings::GRACE)
        .store_timeout(settings::STORE_TIMEOUT)
        .rate_limit(settings::global_rate()?)
        .concurrency_limit(settings::global_units()?)
        .handle(move |job: ChaosJob, delivery: Delivery| {
            let ledger = Arc::clone(&handler_ledger);
            let name = Arc::clone(&handler_name);
            async move { work(&ledger, &name, job, &delivery).await }
        })
        .map_err(|error| format!("worker configuration: {error}"))?;

    let counters = worker.counters();
    let counter_ledger = Arc::clone(&ledger);
    let counter_name = name.clone();
    let periodic = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            write_counters(&counter_ledger, &counter_name, counters.snapshot(), false);
        }
    });

    let report = worker.run(shutdown).await;
    periodic.abort();
    write_counters(&ledger, &name, report, true);
    Ok(())
}

/// The handler's body.
async fn work(
    ledger: &LedgerWriter,
    name: &str,
    job: ChaosJob,
    delivery: &Delivery,
) -> Result<(), String> {
    let fields = |extra: &[(&'static str, String)]| {
        let mut fields = vec![
            ("job", delivery.id().get().to_string()),
            ("n", job.n.to_string()),
            ("attempt", delivery.attempt().to_string()),
            ("worker", name.to_owned()),
        ];
        fields.extend_from_slice(extra);
        fields
    };
    // The planned work: the checker holds a run cut off from the store to its fence only
    // when its work would have outlasted the lease.
    ledger.record(
        "start",
        &fields(&[
            ("poison", u8::from(job.poison).to_string()),
            ("fails", job.fails.to_string()),
            ("work_ms", job.work_ms.to_string()),
        ]),
    );
    if job.poison {
        // The fault under test: a job that takes its process down, every time.
        std::process::abort();
    }
    // Work first: a run whose work ended while its process was paused reports it on waking,
    // though its token may have fired in the same instant (the fence's tick is overdue
    // too). That late end is what the store must refuse; a fence that wins the race would
    // leave the refusal of late acks untested.
    tokio::select! {
        biased;
        () = tokio::time::sleep(Duration::from_millis(u64::from(job.work_ms))) => {
            let attempt = delivery.attempt();
            if job.fails_at(attempt) {
                // The failure under test: the store must retry it, or bury it at its last
                // attempt, and never record it completed.
                ledger.record("failed", &fields(&[]));
                return Err(format!("planned failure at attempt {attempt}"));
            }
            ledger.record("done", &fields(&[]));
            Ok(())
        }
        () = delivery.token().cancelled() => {
            ledger.record("cancelled", &fields(&[]));
            Err("cancelled: lease lost or shutting down".to_owned())
        }
    }
}

fn write_counters(ledger: &LedgerWriter, name: &str, report: WorkerReport, last: bool) {
    ledger.record(
        "counters",
        &[
            ("worker", name.to_owned()),
            ("final", u8::from(last).to_string()),
            ("claimed", report.claimed.to_string()),
            ("completed", report.completed.to_string()),
            ("retried", report.retried.to_string()),
            ("dead", report.dead.to_string()),
            ("released", report.released.to_string()),
            ("stale", report.stale.to_string()),
            ("lost_leases", report.lost_leases.to_string()),
            ("unrecorded", report.unrecorded.to_string()),
            ("store_errors", report.store_errors.to_string()),
        ],
    );
}

/// Warnings from the worker and the store (failed heartbeats, fenced runs) go to stderr,
/// which the orchestrator keeps next to the ledger.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}
