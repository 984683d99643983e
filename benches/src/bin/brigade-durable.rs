//! The durable benchmark: brigade's PostgreSQL queue against apalis's, with worker
//! processes of this same binary, printing one JSON object per line on stdout for
//! `cargo xtask bench durable`.
//!
//! ```text
//! brigade-durable [--quick]                                   the coordinator
//! brigade-durable --worker SUBJECT --url URL --name NAME --concurrency N
//! ```
//!
//! Coordinator events, in order: `plan` (sizes, measurements and the server's settings),
//! then per measurement `start` and `sample`, then `done`. The database server is the one
//! of `DATABASE_URL` when it is set, else a throwaway local cluster.

use std::io::Write;

use brigade_benches::Scale;
use brigade_benches::durable::{
    DurablePlan, DurableSubject, describe_server, run_plan, run_worker_process,
};
use serde_json::{Value, json};

const USAGE: &str = "usage: brigade-durable [--quick]\n       brigade-durable --worker SUBJECT --url URL --name NAME --concurrency N";

enum Role {
    Coordinator {
        scale: Scale,
    },
    Worker {
        subject: DurableSubject,
        url: String,
        name: String,
        concurrency: usize,
    },
}

fn parse(args: impl Iterator<Item = String>) -> Result<Role, String> {
    let mut scale = Scale::Full;
    let (mut subject, mut url, mut name, mut concurrency) = (None, None, None, 16);
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => scale = Scale::Quick,
            "--worker" => {
                let given = value()?;
                subject = Some(
                    DurableSubject::from_name(&given)
                        .ok_or_else(|| format!("unknown subject `{given}`"))?,
                );
            }
            "--url" => url = Some(value()?),
            "--name" => name = Some(value()?),
            "--concurrency" => {
                let given = value()?;
                concurrency = given
                    .parse()
                    .map_err(|_| format!("bad concurrency `{given}`"))?;
            }
            _ => return Err(format!("unknown argument `{arg}`\n{USAGE}")),
        }
    }
    Ok(match subject {
        Some(subject) => Role::Worker {
            subject,
            url: url.ok_or("--worker needs --url")?,
            name: name.unwrap_or_else(|| subject.name().to_owned()),
            concurrency,
        },
        None => Role::Coordinator { scale },
    })
}

fn emit(value: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the reader is gone; nothing useful is left to do but stop.
    if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

async fn coordinate(scale: Scale) -> Result<(), String> {
    let plan = DurablePlan::new(scale);
    let server = describe_server().await?;
    let measurements: Vec<Value> = plan
        .measurements
        .iter()
        .map(|m| json!({"workload": m.workload(), "subject": m.subject().name(), "processes": m.processes()}))
        .collect();
    emit(&json!({
        "event": "plan",
        "scale": if scale == Scale::Quick { "quick" } else { "full" },
        "throughput_jobs": plan.throughput_jobs,
        "latency_jobs": plan.latency_jobs,
        "latency_rate": plan.latency_rate,
        "prefilled_rows": plan.prefilled_rows,
        "concurrency": plan.concurrency,
        "measurements": measurements,
        "server": server,
    }));
    run_plan(&plan, |event| emit(&event)).await?;
    emit(&json!({"event": "done"}));
    Ok(())
}

fn main() {
    let role = match parse(std::env::args().skip(1)) {
        Ok(role) => role,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a runtime: {error}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        match role {
            Role::Coordinator { scale } => coordinate(scale).await,
            Role::Worker {
                subject,
                url,
                name,
                concurrency,
            } => run_worker_process(subject, &url, &name, concurrency).await,
        }
    });
    if let Err(message) = result {
        eprintln!("brigade-durable: {message}");
        std::process::exit(1);
    }
    // The stdin reader of a worker sits on a blocking read the runtime cannot cancel.
    std::process::exit(0);
}
