//! `brigade-chaos run`: sets the stage (network, store, workers, producer), plays the
//! fault schedule, waits for the queue to drain, dumps the jobs and runs the checker.
//! Which store it is matters only to [`Server`] (start, crash, URL), [`Client`] (connect,
//! counts, dump) and the choice of fault kinds.
//!
//! Everything the run creates is owned by a value whose `Drop` removes it — the worker
//! processes, the producer, the server and its directory, the namespaces and the bridge —
//! declared so that they go in that order, on success, on error, on Ctrl-C and on a
//! panic. A run that was killed outright leaves them behind; the next run removes them
//! first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::RunOptions;
use crate::client::Client;
use crate::faults::{self, Targets, lock};
use crate::fleet::Fleet;
use crate::ledger::LedgerWriter;
use crate::netns::Network;
use crate::producer_process::{ProducerProcess, ProducerSpec};
use crate::server::Server;
use crate::store_kind::{Fsync, StoreKind};
use crate::{check, settings};

/// The size of a run.
#[derive(Clone, Copy, Debug)]
struct Size {
    cycles: u32,
    jobs: u64,
    poison: u32,
    always_failing: u32,
}

/// The quiet time after the last fault.
const SETTLE: Duration = Duration::from_secs(5);
/// How long the queue may take to drain once the producer is done.
const DRAIN_FOR: Duration = Duration::from_secs(120);
/// Attempts at the dump: its first store call may meet a connection a crash broke.
const DUMP_TRIES: u32 = 3;
/// How long the SQLite producer keeps each transaction open once written: long enough to
/// be killed inside it, short enough not to hold the file's write lock past a lease.
const HOLD_TRANSACTION: Duration = Duration::from_millis(100);
/// About how often the producer sends a long job (past the lease) where links go down: a
/// link down mostly finds one running on some worker, and between them they hold about one
/// unit of the global concurrency limit. Where no link goes down there are none: a kill of
/// every process would bring them all back at once, to fill the units the jobs they held
/// wait for.
const LONG_EVERY: Duration = Duration::from_secs(4);

/// Runs the harness; `Ok(false)` when a MUST failed.
pub(crate) async fn run(options: RunOptions) -> Result<bool, String> {
    let started = Instant::now();
    let seed = options
        .seed
        .unwrap_or_else(|| crate::ledger::now_micros() % 1_000_000);
    let size = if options.quick {
        Size {
            cycles: options.cycles.unwrap_or(3),
            // 600 until the graceful restart joined the schedule and made it a third longer:
            // more jobs keep the flow as dense, so that a fault still finds work.
            jobs: 800,
            poison: 2,
            always_failing: 2,
        }
    } else {
        Size {
            cycles: options.cycles.unwrap_or(20),
            jobs: 8000,
            poison: 7,
            always_failing: 7,
        }
    };
    let dir = prepare_dir(&options.out, seed)?;
    let exe =
        std::env::current_exe().map_err(|error| format!("cannot find this program: {error}"))?;
    let store = options.store;
    println!(
        "brigade-chaos: store {store}{}, seed {seed} ({}), {} cycles of each fault, {} jobs ({} poison, {} always failing, one in {} failing its first attempt), {} workers",
        if store == StoreKind::Redis {
            format!(" (appendfsync {})", options.fsync)
        } else {
            String::new()
        },
        if options.quick { "quick" } else { "full" },
        size.cycles,
        size.jobs,
        size.poison,
        size.always_failing,
        crate::job::FAIL_FIRST_EVERY,
        options.workers
    );
    let mut replay = String::from("cargo xtask chaos");
    if store != StoreKind::Postgres {
        replay.push_str(&format!(" --store {store}"));
    }
    if options.fsync != Fsync::Always {
        replay.push_str(&format!(" --redis-fsync {}", options.fsync));
    }
    if options.quick {
        replay.push_str(" --quick");
    }
    if let Some(cycles) = options.cycles {
        replay.push_str(&format!(" --cycles {cycles}"));
    }
    if options.workers != 4 {
        replay.push_str(&format!(" --workers {}", options.workers));
    }
    if options.allow_no_netns {
        replay.push_str(" --allow-no-netns");
    }
    println!("replay with: {replay} --seed {seed}");
    println!("ledgers: {}", dir.display());

    // Declared in reverse order of teardown: locals drop last-declared first.
    let mut hosts = vec!["db".to_owned(), "producer".to_owned()];
    hosts.extend((1..=options.workers).map(|i| format!("w{i}")));
    let host_names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let network = Arc::new(if store == StoreKind::Sqlite {
        Network::Loopback {
            reason: "SQLite: one host, every process opens the same file".to_owned(),
        }
    } else {
        Network::build(&host_names)
    });
    match network.as_ref() {
        Network::Loopback { .. } if store == StoreKind::Sqlite => {
            println!(
                "network: none — SQLite runs every process on one host, on one file; link down and server crash do not apply"
            );
        }
        Network::Namespaces { .. } => {
            println!(
                "network: namespaces chaos-{{{}}} on bridge brchaos0 (10.77.0.0/24)",
                host_names.join(",")
            );
        }
        Network::Loopback { reason } if options.allow_no_netns => {
            println!(
                "network: LOOPBACK ONLY ({reason}): every process on 127.0.0.1, the link-down fault is SKIPPED (--allow-no-netns)"
            );
        }
        Network::Loopback { reason } => {
            // A run without its partitions would pass while proving nothing about fencing:
            // refused before anything starts, unless asked for by name.
            return Err(format!(
                "network namespaces cannot be made ({reason}), so the link-down fault could not be played on {store}; \
                 run as root where `ip netns` works, or pass --allow-no-netns to accept a run without it (its table says so)"
            ));
        }
    }
    if store == StoreKind::Redis {
        println!(
            "redis: appendfsync {}{}; no transactional enqueue, so the rolled-back-transaction check is skipped",
            options.fsync,
            if options.fsync == Fsync::Everysec {
                " — a server crash may lose up to a second of acknowledged writes: lost jobs are REPORTED, not failed"
            } else {
                ""
            }
        );
    }
    let server = tokio::task::block_in_place(|| Server::create(store, options.fsync, &network))?;
    let url = server.url();
    // Creates the schema once, before any worker runs.
    let client = Client::connect_patiently(&url, 2, true, Duration::from_secs(30)).await?;
    write_config(&dir, seed, &size, &network, &url, &options)?;

    let fault_ledger = Arc::new(LedgerWriter::open(&dir.join("faults.log"))?);
    let mut rng = fastrand::Rng::with_seed(seed);
    let kinds = faults::kinds(store, network.is_namespaced());
    let schedule = faults::schedule(&mut rng, size.cycles, options.workers, &kinds);
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
    let producer = Mutex::new(ProducerProcess::start(
        ProducerSpec {
            exe: exe.clone(),
            url: url.clone(),
            dir: dir.clone(),
            jobs: size.jobs,
            poison: size.poison,
            always_failing: size.always_failing,
            seed: rng.u64(..),
            hold_ms: if store == StoreKind::Sqlite {
                u64::try_from(HOLD_TRANSACTION.as_millis()).unwrap_or(100)
            } else {
                0
            },
            long_every_ms: if kinds.contains(&faults::FaultKind::LinkDown) {
                u64::try_from(LONG_EVERY.as_millis()).unwrap_or(4000)
            } else {
                0
            },
            until: Instant::now() + planned,
        },
        Arc::clone(&network),
    )?);
    println!(
        "{} faults planned over about {}s",
        schedule.len(),
        planned.as_secs()
    );

    let targets = Targets {
        fleet: &fleet,
        producer: &producer,
        server: &server,
        network: &network,
        ledger: &fault_ledger,
    };
    let played = tokio::select! {
        played = play(&schedule, &targets, &client, planned) => played,
        supervised = supervise(&fleet) => supervised,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
    };
    if let Err(error) = played {
        eprintln!("stopping: {error}");
        return Err(error);
    }
    tokio::task::block_in_place(|| lock(&fleet).retire(settings::exit_patience()));
    integrity(&server, &fault_ledger).await?;
    crate::dump::dump_jobs(&client, &dir, DUMP_TRIES).await?;
    drop(client);
    drop(producer);
    drop(fleet);
    drop(server);
    drop(network);
    println!("run took {}s; checking", started.elapsed().as_secs());
    let report = check::run(&dir)?;
    Ok(report.passed())
}

/// The faults, then the producer's end, then the drain.
async fn play(
    schedule: &[faults::Fault],
    targets: &Targets<'_>,
    client: &Client,
    planned: Duration,
) -> Result<(), String> {
    for (i, fault) in schedule.iter().enumerate() {
        tokio::time::sleep(fault.gap).await;
        let what = faults::inject(*fault, targets).await?;
        println!("[{:>3}/{}] {what}", i + 1, schedule.len());
        let _ = std::io::stdout().flush();
        if matches!(
            fault.kind,
            faults::FaultKind::Kill
                | faults::FaultKind::KillAll
                | faults::FaultKind::GracefulRestart
        ) {
            // The redelivery this kill or restart starts is timed: no other fault may share
            // its window.
            tokio::time::sleep(settings::redelivery_bound()).await;
        }
        integrity(targets.server, targets.ledger).await?;
    }
    // The last fault's effects (a rejoin, a redelivery) play out before the drain.
    tokio::time::sleep(SETTLE).await;
    let deadline = Instant::now() + planned + Duration::from_secs(60);
    loop {
        match lock(targets.producer).try_wait()? {
            Some(status) if status.success() => break,
            Some(status) => {
                return Err(format!(
                    "the producer failed ({status}); see producer.stderr"
                ));
            }
            None if Instant::now() < deadline => {}
            None => return Err("the producer did not finish in time".to_owned()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("producer finished; waiting for the queue to drain");
    let waiting_since = Instant::now();
    let deadline = waiting_since + DRAIN_FOR;
    // The checker holds the run to a drained queue: the last line of this wait says.
    let drained = |live: u64| {
        targets.ledger.record(
            "drain",
            &[
                ("live", live.to_string()),
                ("waited_ms", waiting_since.elapsed().as_millis().to_string()),
            ],
        );
    };
    loop {
        // A store call may meet a connection the last server crash broke; the client
        // reconnects on the next one, so an error here is retried until the deadline.
        let live = match client.counts().await {
            Ok(counts) => counts.live(),
            Err(error) if Instant::now() < deadline => {
                eprintln!("counting live jobs: {error}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        if live == 0 {
            drained(live);
            return Ok(());
        }
        if Instant::now() >= deadline {
            drained(live);
            println!(
                "the queue did not drain within {DRAIN_FOR:?}: {live} live jobs left (a MUST fails; the jobs are dumped for the checker)"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// SQLite only: `PRAGMA integrity_check` on a connection of its own, written to the faults
/// ledger (`integrity result=ok`) for the checker, and said when it is not `ok`.
async fn integrity(server: &Server, ledger: &LedgerWriter) -> Result<(), String> {
    let Some(file) = server.sqlite() else {
        return Ok(());
    };
    let result = file.integrity_check().await?;
    ledger.record("integrity", &[("result", result.clone())]);
    if result != "ok" {
        println!("integrity_check: {result}");
    }
    Ok(())
}

/// Restarts dead workers, forever (it ends with the `select!` around it).
async fn supervise(fleet: &Mutex<Fleet>) -> Result<(), String> {
    loop {
        lock(fleet).supervise()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    options: &RunOptions,
) -> Result<(), String> {
    let text = format!(
        "seed={seed}\nmode={}\ncycles={}\njobs={}\npoison={}\nalways_failing={}\nnetwork={}\nallow_no_netns={}\nurl={url}\nstore={}\nfsync={}\n",
        if options.quick { "quick" } else { "full" },
        size.cycles,
        size.jobs,
        size.poison,
        size.always_failing,
        match (network.is_namespaced(), options.store) {
            (true, _) => "namespaces",
            (false, StoreKind::Sqlite) => "one-host",
            (false, _) => "loopback",
        },
        u8::from(options.allow_no_netns),
        options.store,
        options.fsync
    );
    std::fs::write(dir.join("run.conf"), text).map_err(|error| format!("run.conf: {error}"))
}
