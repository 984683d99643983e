//! The durable benchmark: brigade's queues against apalis's on PostgreSQL, Redis and
//! SQLite, with worker processes of this same binary, printing one JSON object per line on
//! stdout for `cargo xtask bench durable`.
//!
//! ```text
//! brigade-durable [--quick] [postgres|redis|sqlite]...        the coordinator (all engines by default)
//! brigade-durable --worker SIDE --engine ENGINE --url URL --name NAME --concurrency N
//! ```
//!
//! Coordinator events, in order: `plan` (sizes, measurements and each engine's server
//! settings), then per measurement `start` and `sample`, then `done`. PostgreSQL is the
//! server of `DATABASE_URL` when it is set, else a throwaway local cluster; Redis is always
//! a throwaway `redis-server` (every row flushes it); SQLite files go to the temporary
//! directory.

use std::io::Write;

use brigade_benches::Scale;
use brigade_benches::durable::{
    DurablePlan, DurableSubject, Engine, Side, describe_server, run_plan, run_worker_process,
};
use serde_json::{Value, json};

const USAGE: &str = "usage: brigade-durable [--quick] [postgres|redis|sqlite]...\n       brigade-durable --worker SIDE --engine ENGINE --url URL --name NAME --concurrency N";

enum Role {
    Coordinator {
        scale: Scale,
        engines: Vec<Engine>,
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
    let mut engines = Vec::new();
    let (mut side, mut engine, mut url, mut name, mut concurrency) = (None, None, None, None, 16);
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => scale = Scale::Quick,
            "--worker" => {
                let given = value()?;
                side =
                    Some(Side::from_name(&given).ok_or_else(|| format!("unknown side `{given}`"))?);
            }
            "--engine" => {
                let given = value()?;
                engine = Some(
                    Engine::from_name(&given).ok_or_else(|| format!("unknown engine `{given}`"))?,
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
            selection if !Engine::selected(selection).is_empty() => {
                engines.extend(Engine::selected(selection));
            }
            _ => return Err(format!("unknown argument `{arg}`\n{USAGE}")),
        }
    }
    if engines.is_empty() {
        engines = Engine::ALL.to_vec();
    }
    Ok(match side {
        Some(side) => Role::Worker {
            subject: DurableSubject {
                engine: engine.ok_or("--worker needs --engine")?,
                side,
            },
            url: url.ok_or("--worker needs --url")?,
            name: name.unwrap_or_else(|| side.name().to_owned()),
            concurrency,
        },
        None => Role::Coordinator { scale, engines },
    })
}

fn emit(value: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the reader is gone; nothing useful is left to do but stop.
    if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

async fn coordinate(scale: Scale, engines: &[Engine]) -> Result<(), String> {
    let plan = DurablePlan::new(scale, engines);
    let mut servers = serde_json::Map::new();
    for &engine in engines {
        servers.insert(engine.name().to_owned(), describe_server(engine).await?);
    }
    let engine_names: Vec<&str> = engines.iter().map(|engine| engine.name()).collect();
    let throughput_jobs: serde_json::Map<String, Value> = engines
        .iter()
        .map(|&engine| {
            (
                engine.name().to_owned(),
                json!(plan.throughput_jobs_on(engine)),
            )
        })
        .collect();
    let measurements: Vec<Value> = plan
        .measurements
        .iter()
        .map(|m| {
            json!({
                "workload": m.workload(),
                "engine": m.subject().engine.name(),
                "subject": m.subject().side.name(),
                "processes": m.processes(),
            })
        })
        .collect();
    emit(&json!({
        "event": "plan",
        "scale": if scale == Scale::Quick { "quick" } else { "full" },
        "throughput_jobs": plan.throughput_jobs,
        "latency_jobs": plan.latency_jobs,
        "latency_rate": plan.latency_rate,
        "prefilled_rows": plan.prefilled_rows,
        "concurrency": plan.concurrency,
        "engines": engine_names,
        "throughput_jobs_per_engine": throughput_jobs,
        "measurements": measurements,
        "servers": servers,
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
            Role::Coordinator { scale, engines } => coordinate(scale, &engines).await,
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
