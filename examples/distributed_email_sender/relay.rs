//! A stand-in for the SMTP provider: an HTTP "mail relay" on 127.0.0.1 that accepts a
//! message, refuses mailboxes that do not exist (until an operator fixes them), and counts
//! every delivery so the demo can prove that each email went out.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The domain whose mailboxes bounce: a permanent failure, until `/fix`.
pub(crate) const BOUNCING_DOMAIN: &str = "bounce.example";

/// What the relay has seen.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    /// Deliveries per address.
    pub(crate) by_address: Mutex<HashMap<String, u32>>,
    /// Set by `/fix`: the bouncing mailboxes exist now.
    pub(crate) fixed: AtomicBool,
}

impl Deliveries {
    /// Addresses delivered at least once, and deliveries beyond the first.
    pub(crate) fn tally(&self) -> (usize, u32) {
        let by_address = self
            .by_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let repeats = by_address.values().map(|times| times - 1).sum();
        (by_address.len(), repeats)
    }
}

async fn serve(
    request: Request<Incoming>,
    deliveries: Arc<Deliveries>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.method().clone(), request.uri().path().to_owned()) {
        (Method::POST, path) if path == "/send" => {
            let address = match request.into_body().collect().await {
                Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "unreadable body".into())),
            };
            send(&address, &deliveries).await
        }
        (Method::POST, path) if path == "/fix" => {
            deliveries.fixed.store(true, Ordering::SeqCst);
            (StatusCode::OK, "mailboxes fixed".to_owned())
        }
        (Method::GET, path) if path == "/stats" => {
            let (addresses, repeats) = deliveries.tally();
            (StatusCode::OK, format!("{addresses} {repeats}"))
        }
        _ => (StatusCode::NOT_FOUND, "no such endpoint".to_owned()),
    };
    Ok(reply(status, body))
}

async fn send(address: &str, deliveries: &Deliveries) -> (StatusCode, String) {
    // An SMTP conversation takes a while.
    tokio::time::sleep(Duration::from_millis(15)).await;
    if address.ends_with(BOUNCING_DOMAIN) && !deliveries.fixed.load(Ordering::SeqCst) {
        // 550 in SMTP: the mailbox does not exist. Retrying will not help.
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("550 mailbox unavailable: {address}"),
        );
    }
    if fastrand::u8(..100) < 2 {
        // 451 in SMTP: try again later.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "451 temporary local problem".to_owned(),
        );
    }
    let mut by_address = deliveries
        .by_address
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *by_address.entry(address.to_owned()).or_default() += 1;
    (StatusCode::OK, "250 ok".to_owned())
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Starts the relay on `addr` (port 0 picks a free one); returns where it listens.
pub(crate) async fn start(addr: &str, deliveries: Arc<Deliveries>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let deliveries = Arc::clone(&deliveries);
            tokio::spawn(async move {
                let service = service_fn(move |request| serve(request, Arc::clone(&deliveries)));
                // A client that hangs up early (a killed worker) is not the relay's problem.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(local)
}
