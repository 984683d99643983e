//! A worker process: claims emails from the shared queue and sends them through the relay,
//! at most 50 per second across every worker, until SIGTERM.

use std::fmt;
use std::time::Duration;

use brigade::CancellationToken;
use brigade::hooks::RunOutcome;
use brigade::middleware::{Backoff, Jitter, Retry};
use brigade::queue::{Delivery, GlobalRate, Store, Worker};
use tokio::signal::unix::{SignalKind, signal};

use crate::{Email, QUEUE};

/// Why a send failed, as the retry policy needs to know it.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The mailbox does not exist: no retry will deliver it.
    Permanent(String),
    /// The relay or the network failed: worth another try later.
    Transient(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Permanent(reason) => write!(f, "permanent: {reason}"),
            SendError::Transient(reason) => write!(f, "transient: {reason}"),
        }
    }
}

async fn send(client: &reqwest::Client, relay: &str, email: &Email) -> Result<(), SendError> {
    let response = client
        .post(format!("http://{relay}/send"))
        .body(email.to.clone())
        .send()
        .await
        .map_err(|error| SendError::Transient(error.to_string()))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match status.as_u16() {
        200..=299 => Ok(()),
        422 => Err(SendError::Permanent(text)),
        _ => Err(SendError::Transient(text)),
    }
}

/// Runs one worker on `store` until SIGTERM (graceful: running sends finish, the rest go
/// back).
pub(crate) async fn run<S: Store>(
    store: S,
    relay: &str,
    name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let relay = relay.to_owned();
    let worker = Worker::builder(store, QUEUE)
        .worker_id(name)
        .concurrency(10)
        .lease(Duration::from_secs(5))
        .heartbeat(Duration::from_secs(1))
        .sweep(Duration::from_secs(1))
        .grace(Duration::from_secs(5))
        // The provider allows 50 emails per second for the whole fleet, not per worker.
        .rate_limit(GlobalRate::new("smtp-provider", 50, Duration::from_secs(1))?.burst(10)?)
        .retry(
            Retry::builder()
                .max_attempts(u32::MAX) // each email's own max_attempts bounds it
                .backoff(
                    Backoff::exponential(Duration::from_millis(200))
                        .cap(Duration::from_secs(5))
                        .jitter(Jitter::Full),
                )
                .retry_if(|outcome| !matches!(outcome, RunOutcome::Failed(SendError::Permanent(_))))
                .build()?,
        )
        .handle(move |email: Email, delivery: Delivery| {
            let (client, relay) = (client.clone(), relay.clone());
            async move {
                if delivery.attempt() > 1 {
                    tracing::info!(to = %email.to, attempt = delivery.attempt(), "sending again");
                }
                send(&client, &relay, &email).await
            }
        })?;

    let shutdown = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate())?;
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        terminate.recv().await;
        on_signal.cancel();
    });
    let report = worker.run(shutdown).await;
    println!(
        "{name}: stopped: {} sent, {} retried, {} dead, {} given back, {} refused as stale",
        report.completed, report.retried, report.dead, report.released, report.stale
    );
    Ok(())
}
