//! Three worker processes on one host drain one SQLite file: SQLite's write lock
//! serializes their claims, so no job is claimed twice while its lease holds, and every
//! job completes exactly once.
//!
//! The worker processes are this test binary run again with `--ignored` on
//! `worker_process`, told by environment variables where the file is and which process
//! they are.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::CancellationToken;
use brigade_queue::{Delivery, JobState, Queue, Store, Worker};
use brigade_sqlite::SqliteStore;

const DIR_VAR: &str = "BRIGADE_SQLITE_SHARED_DIR";
const INDEX_VAR: &str = "BRIGADE_SQLITE_PROCESS_INDEX";
const QUEUE: &str = "shared";
const JOBS: u64 = 3_000;
const PROCESSES: usize = 3;
const PATIENCE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_one_file() {
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let queue = Queue::<SqliteStore, u64>::new(store.clone(), QUEUE);
    // Half before the workers start, half while they run: the second half reaches the
    // other processes by their polling alone.
    queue
        .enqueue_batch((0..JOBS / 2).collect())
        .await
        .expect("enqueue");

    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|index| spawn_worker_process(dir.path(), index))
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while !(0..PROCESSES).all(|index| dir.path().join(format!("ready-{index}")).exists()) {
        assert!(
            Instant::now() < deadline,
            "worker processes never got ready"
        );
        reap_failures(&mut children);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Started together, so every process finds work.
    std::fs::write(dir.path().join("go"), b"").expect("go");
    for chunk in (JOBS / 2..JOBS).collect::<Vec<_>>().chunks(100) {
        queue.enqueue_batch(chunk.to_vec()).await.expect("enqueue");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    for (index, child) in children.into_iter().enumerate() {
        let output = wait_with_deadline(child, deadline);
        assert!(
            output.status.success(),
            "worker process {index} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // Each line of a ledger is one handler run: job, payload, attempt, process.
    let mut runs_of: HashMap<i64, Vec<(u64, u32, usize)>> = HashMap::new();
    let mut per_process = vec![0_u64; PROCESSES];
    for (index, ran) in per_process.iter_mut().enumerate() {
        let ledger =
            std::fs::read_to_string(dir.path().join(format!("ledger-{index}"))).expect("ledger");
        for line in ledger.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let [id, n, attempt] = fields[..] else {
                panic!("bad ledger line {line:?}");
            };
            runs_of.entry(id.parse().expect("id")).or_default().push((
                n.parse().expect("n"),
                attempt.parse().expect("attempt"),
                index,
            ));
            *ran += 1;
        }
    }
    let twice: Vec<_> = runs_of.iter().filter(|(_, runs)| runs.len() > 1).collect();
    assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
    let payloads: HashSet<u64> = runs_of.values().map(|runs| runs[0].0).collect();
    assert_eq!(payloads.len() as u64, JOBS, "every job ran");
    assert!(
        runs_of.values().all(|runs| runs[0].1 == 1),
        "no lease expired, so every run was a first attempt"
    );
    assert!(
        per_process.iter().all(|&ran| ran > 0),
        "every process took part: {per_process:?}"
    );
    let counts = store.counts(QUEUE).await.expect("counts");
    assert_eq!((counts.completed, counts.live()), (JOBS, 0), "{counts:?}");
    for id in runs_of.keys() {
        let record = store
            .job(brigade_queue::DurableId::new(*id))
            .await
            .expect("job")
            .expect("exists");
        assert_eq!((record.state, record.attempt), (JobState::Completed, 1));
    }
    println!("runs per process: {per_process:?}");
}

fn spawn_worker_process(dir: &Path, index: usize) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["worker_process", "--exact", "--ignored", "--nocapture"])
        .env(DIR_VAR, dir)
        .env(INDEX_VAR, index.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a worker process")
}

/// Fails at once if a worker process already exited with an error.
fn reap_failures(children: &mut [Child]) {
    for (index, child) in children.iter_mut().enumerate() {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "worker process {index} exited: {status}");
        }
    }
}

fn wait_with_deadline(mut child: Child, deadline: Instant) -> std::process::Output {
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => return child.wait_with_output().expect("output"),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("output");
                panic!(
                    "worker process still running at the deadline:\n{}\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One worker process: runs a `Worker` on the shared file until every job has completed,
/// writing a ledger line per run. Does nothing unless started by
/// `three_processes_share_one_file`.
#[test]
#[ignore = "a worker process of three_processes_share_one_file, which starts it"]
fn worker_process() {
    let (Some(dir), Some(index)) = (std::env::var_os(DIR_VAR), std::env::var_os(INDEX_VAR)) else {
        return;
    };
    let index: usize = index.to_string_lossy().parse().expect("process index");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run_worker_process(PathBuf::from(dir), index));
}

async fn run_worker_process(dir: PathBuf, index: usize) {
    let store = SqliteStore::open(dir.join("jobs.db")).await.expect("open");
    let ledger = std::fs::File::create(dir.join(format!("ledger-{index}"))).expect("ledger");
    let ledger = Arc::new(Mutex::new(std::io::BufWriter::new(ledger)));
    std::fs::write(dir.join(format!("ready-{index}")), b"").expect("ready");
    let deadline = Instant::now() + PATIENCE;
    while !dir.join("go").exists() {
        assert!(Instant::now() < deadline, "never told to go");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let written = Arc::clone(&ledger);
    let worker = Worker::builder(store.clone(), QUEUE)
        .concurrency(8)
        .poll(Duration::from_millis(50))
        .worker_id(format!("process-{index}"))
        .handle(move |n: u64, delivery: Delivery| {
            let written = Arc::clone(&written);
            async move {
                // Long enough that the three processes' runs overlap in time.
                tokio::time::sleep(Duration::from_millis(2)).await;
                let mut ledger = written.lock().map_err(|_| "ledger poisoned".to_string())?;
                writeln!(ledger, "{} {n} {}", delivery.id().get(), delivery.attempt())
                    .map_err(|error| error.to_string())
            }
        })
        .expect("worker");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    loop {
        let counts = store.counts(QUEUE).await.expect("counts");
        if counts.completed == JOBS {
            break;
        }
        assert!(Instant::now() < deadline, "stuck at {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let report = running.await.expect("worker");
    assert_eq!(report.stale, 0, "{report:?}");
    assert_eq!(report.ended(), report.claimed, "{report:?}");
    ledger
        .lock()
        .expect("ledger")
        .flush()
        .expect("flush the ledger");
    println!("process {index}: {report:?}");
}
