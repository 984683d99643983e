//! `brigade-chaos run`: sets the stage (network, server, workers, producer), plays the
//! fault schedule, waits for the queue to drain, dumps the jobs table and runs the
//! checker.
//!
//! Everything the run creates is owned by a value whose `Drop` removes it — the worker
//! processes, the producer, the server and its directory, the namespaces and the bridge —
//! declared so that they go in that order, on success, on error, on Ctrl-C and on a
//! panic. A run that was killed outright leaves them behind; the next run removes them
//! first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_postgres::PgStore;

use crate::cli::RunOptions;
use crate::cluster::Cluster;
use crate::faults::{self, Targets, lock};
use crate::fleet::Fleet;
use crate::ledger::LedgerWriter;
use crate::netns::Network;
use crate::{check, settings};

/// The size of a run.
#[derive(Clone, Copy, Debug)]
struct Size {
    cycles: u32,
    jobs: u64,
    poison: u32,
}

/// The quiet time after the last fault.
const SETTLE: Duration = Duration::from_secs(5);
/// How long the queue may take to drain once the producer is done.
const DRAIN_FOR: Duration = Duration::from_secs(120);

/// Runs the harness; `Ok(false)` when a MUST failed.
pub(crate) async fn run(options: RunOptions) -> Result<bool, String> {
    let started = Instant::now();
    let seed = options
        .seed
        .unwrap_or_else(|| crate::ledger::now_micros() % 1_000_000);
    let size = if options.quick {
        Size {
            cycles: options.cycles.unwrap_or(3),
            jobs: 600,
            poison: 2,
        }
    } else {
        Size {
            cycles: options.cycles.unwrap_or(20),
            jobs: 6000,
            poison: 7,
        }
    };
    let dir = prepare_dir(&options.out, seed)?;
    let exe =
        std::env::current_exe().map_err(|error| format!("cannot find this program: {error}"))?;
    println!(
        "brigade-chaos: seed {seed} ({}), {} cycles of each fault, {} jobs ({} poison), {} workers",
        if options.quick { "quick" } else { "full" },
        size.cycles,
        size.jobs,
        size.poison,
        options.workers
    );
    let mut replay = String::from("cargo xtask chaos");
    if options.quick {
        replay.push_str(" --quick");
    }
    if let Some(cycles) = options.cycles {
        replay.push_str(&format!(" --cycles {cycles}"));
    }
    if options.workers != 4 {
        replay.push_str(&format!(" --workers {}", options.workers));
    }
    println!("replay with: {replay} --seed {seed}");
    println!("ledgers: {}", dir.display());

    // Declared in reverse order of teardown: locals drop last-declared first.
    let mut hosts = vec!["db".to_owned(), "producer".to_owned()];
    hosts.extend((1..=options.workers).map(|i| format!("w{i}")));
    let host_names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let network = Arc::new(Network::build(&host_names));
    match network.as_ref() {
        Network::Namespaces { .. } => {
            println!(
                "network: namespaces chaos-{{{}}} on bridge brchaos0 (10.77.0.0/24)",
                host_names.join(",")
            );
        }
        Network::Loopback { reason } => {
            println!(
                "network: LOOPBACK ONLY ({reason}): every process on 127.0.0.1, the link-down fault is SKIPPED"
            );
        }
    }
    let cluster = tokio::task::block_in_place(|| Cluster::create(&network))?;
    let url = cluster.url();
    migrate(&url).await?;
    write_config(&dir, seed, &size, &network, &url)?;

    let fault_ledger = Arc::new(LedgerWriter::open(&dir.join("faults.log"))?);
    let mut rng = fastrand::Rng::with_seed(seed);
    let schedule = faults::schedule(
        &mut rng,
        size.cycles,
        options.workers,
        network.is_namespaced(),
    );
    let planned = faults::duration(&schedule);
    let workers = u32::try_from(options.workers).unwrap_or(4);
    let fleet = Mutex::new(Fleet::start(
        workers,
        &exe,
        &url,
        &dir,
        Arc::clone(&network),
        Arc::clone(&fault_ledger),
    )?);
    let producer = Reaped(start_producer(
        &network,
        &exe,
        &url,
        &dir,
        size,
        planned,
        rng.u64(..),
    )?);
    println!(
        "{} faults planned over about {}s",
        schedule.len(),
        planned.as_secs()
    );

    let targets = Targets {
        fleet: &fleet,
        cluster: &cluster,
        network: &network,
        ledger: &fault_ledger,
    };
    let played = tokio::select! {
        played = play(&schedule, &targets, producer, &url, planned) => played,
        supervised = supervise(&fleet) => supervised,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
    };
    if let Err(error) = played {
        eprintln!("stopping: {error}");
        return Err(error);
    }
    tokio::task::block_in_place(|| lock(&fleet).retire(settings::GRACE + Duration::from_secs(5)));
    dump_jobs(&url, &dir).await?;
    drop(fleet);
    drop(cluster);
    drop(network);
    println!("run took {}s; checking", started.elapsed().as_secs());
    let report = check::run(&dir)?;
    Ok(report.passed())
}

/// The faults, then the producer's end, then the drain.
async fn play(
    schedule: &[faults::Fault],
    targets: &Targets<'_>,
    mut producer: Reaped,
    url: &str,
    planned: Duration,
) -> Result<(), String> {
    for (i, fault) in schedule.iter().enumerate() {
        tokio::time::sleep(fault.gap).await;
        let what = faults::inject(*fault, targets).await?;
        println!("[{:>3}/{}] {what}", i + 1, schedule.len());
        let _ = std::io::stdout().flush();
        if fault.kind == faults::FaultKind::Kill {
            // The redelivery this kill starts is timed: no other fault may share its window.
            tokio::time::sleep(settings::redelivery_bound()).await;
        }
    }
    // The last fault's effects (a rejoin, a redelivery) play out before the drain.
    tokio::time::sleep(SETTLE).await;
    let deadline = Instant::now() + planned + Duration::from_secs(60);
    loop {
        match producer.0.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(status)) => {
                return Err(format!(
                    "the producer failed ({status}); see producer.stderr"
                ));
            }
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(None) => return Err("the producer did not finish in time".to_owned()),
            Err(error) => return Err(format!("producer: {error}")),
        }
    }
    println!("producer finished; waiting for the queue to drain");
    let pool = open(url).await?;
    let deadline = Instant::now() + DRAIN_FOR;
    let live_sql = format!(
        "SELECT count(*) FROM {}.jobs WHERE state IN ('available', 'running')",
        settings::SCHEMA
    );
    loop {
        let live: i64 = sqlx::query_scalar(&live_sql)
            .fetch_one(&pool)
            .await
            .map_err(|error| error.to_string())?;
        if live == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            println!(
                "the queue did not drain within {DRAIN_FOR:?}: {live} live jobs left (the checker counts them)"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A pool for the orchestrator's own queries.
async fn open(url: &str) -> Result<sqlx::PgPool, String> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|error| format!("cannot reach the server at {url}: {error}"))
}

/// Restarts dead workers, forever (it ends with the `select!` around it).
async fn supervise(fleet: &Mutex<Fleet>) -> Result<(), String> {
    loop {
        lock(fleet).supervise()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The producer process, killed if still running when dropped.
#[derive(Debug)]
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn start_producer(
    network: &Network,
    exe: &Path,
    url: &str,
    dir: &Path,
    size: Size,
    planned: Duration,
    seed: u64,
) -> Result<Child, String> {
    let stderr = std::fs::File::create(dir.join("producer.stderr"))
        .map_err(|error| format!("producer.stderr: {error}"))?;
    let mut command = network.command_on("producer", &exe.display().to_string());
    command
        .args([
            "producer",
            "--url",
            url,
            "--jobs",
            &size.jobs.to_string(),
            "--poison",
            &size.poison.to_string(),
        ])
        // Spread over the schedule, so every fault meets a queue with work in it.
        .args([
            "--seconds",
            &format!("{:.1}", planned.as_secs_f64()),
            "--seed",
            &seed.to_string(),
            "--ledger",
        ])
        .arg(dir.join("producer.log"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    command
        .spawn()
        .map_err(|error| format!("cannot start the producer: {error}"))
}

/// Creates the schema once, before any worker runs.
async fn migrate(url: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgStore::builder(url).max_connections(2).connect().await {
            Ok(_) => return Ok(()),
            Err(error) if Instant::now() >= deadline => {
                return Err(format!("cannot reach the server at {url}: {error}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `OUT/seed-S`, emptied, as an absolute path (the workers run elsewhere).
fn prepare_dir(out: &Path, seed: u64) -> Result<PathBuf, String> {
    let dir = out.join(format!("seed-{seed}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    std::fs::canonicalize(&dir).map_err(|error| format!("{}: {error}", dir.display()))
}

/// `run.conf`: what the checker needs to know about the run.
fn write_config(
    dir: &Path,
    seed: u64,
    size: &Size,
    network: &Network,
    url: &str,
) -> Result<(), String> {
    let text = format!(
        "seed={seed}\ncycles={}\njobs={}\npoison={}\nnetwork={}\nurl={url}\n",
        size.cycles,
        size.jobs,
        size.poison,
        if network.is_namespaced() {
            "namespaces"
        } else {
            "loopback"
        }
    );
    std::fs::write(dir.join("run.conf"), text).map_err(|error| format!("run.conf: {error}"))
}

/// Writes `jobs.tsv`: the store's view of every job, for the checker.
async fn dump_jobs(url: &str, dir: &Path) -> Result<(), String> {
    let pool = open(url).await?;
    let sql = format!(
        "SELECT id, state, (payload->>'n')::int8, coalesce((payload->>'poison')::bool, false), attempt, max_attempts,
                coalesce(last_error, '') FROM {}.jobs WHERE queue = $1 ORDER BY id",
        settings::SCHEMA
    );
    let rows: Vec<(i64, String, i64, bool, i32, i32, String)> = sqlx::query_as(&sql)
        .bind(settings::QUEUE)
        .fetch_all(&pool)
        .await
        .map_err(|error| format!("reading the jobs table: {error}"))?;
    let mut text = String::from("id\tstate\tn\tpoison\tattempt\tmax_attempts\tlast_error\n");
    for (id, state, n, poison, attempt, max_attempts, last_error) in rows {
        let last_error = last_error.replace(['\t', '\n'], " ");
        text.push_str(&format!(
            "{id}\t{state}\t{n}\t{poison}\t{attempt}\t{max_attempts}\t{last_error}\n"
        ));
    }
    std::fs::write(dir.join("jobs.tsv"), text).map_err(|error| format!("jobs.tsv: {error}"))
}
