//! Jobs waiting for a weighted limit are served first in, first out, as Go's
//! `x/sync/semaphore` serves its waiters: a heavy job waiting for the whole capacity is not
//! starved by light jobs that arrive after it and would each fit sooner. On both backends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::{AsyncJob, CancellationToken, Job, JobContext};
use brigade_middleware::WeightedLimit;
use brigade_thread::ThreadPool;
use brigade_tokio::TokioPool;

const CAPACITY: u64 = 4;
const LIGHT_JOBS: usize = 20;

/// A job of some weight that records its start; the holder waits for `hold` first.
struct Weighed {
    weight: u64,
    label: &'static str,
    started: Arc<Mutex<Vec<&'static str>>>,
    hold: Option<CancellationToken>,
}

impl Weighed {
    fn start(&self) {
        self.started.lock().unwrap().push(self.label);
    }
}

impl Job for Weighed {
    type Output = ();
    type Error = String;

    fn run(&mut self, _: &JobContext) -> Result<(), String> {
        self.start();
        if let Some(hold) = &self.hold {
            hold.wait_timeout(Duration::from_secs(30));
        }
        Ok(())
    }
}

impl AsyncJob for Weighed {
    type Output = ();
    type Error = String;

    async fn run(&mut self, _: &JobContext) -> Result<(), String> {
        self.start();
        if let Some(hold) = &self.hold {
            hold.cancelled().await;
        }
        Ok(())
    }
}

/// The jobs of the scenario, in submission order: a light holder that keeps one unit until
/// released, a heavy job wanting all four, then light jobs that would each fit at once.
fn scenario(started: &Arc<Mutex<Vec<&'static str>>>, hold: &CancellationToken) -> Vec<Weighed> {
    let job = |weight, label, hold: Option<CancellationToken>| Weighed {
        weight,
        label,
        started: Arc::clone(started),
        hold,
    };
    let mut jobs = vec![
        job(1, "holder", Some(hold.clone())),
        job(CAPACITY, "heavy", None),
    ];
    jobs.extend((0..LIGHT_JOBS).map(|_| job(1, "light", None)));
    jobs
}

fn limit() -> WeightedLimit<Weighed> {
    WeightedLimit::new(CAPACITY, |job: &Weighed| job.weight).unwrap()
}

/// Waits (bounded) until `ready` holds.
fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn assert_heavy_went_first(started: &Mutex<Vec<&'static str>>) {
    let started = started.lock().unwrap();
    assert_eq!(started.len(), 2 + LIGHT_JOBS, "every job ran: {started:?}");
    assert_eq!(
        &started[..2],
        ["holder", "heavy"],
        "no light job overtook the heavy one waiting before it: {started:?}"
    );
}

#[test]
fn thread_pool_serves_capacity_waits_in_arrival_order() {
    let started = Arc::new(Mutex::new(Vec::new()));
    let hold = CancellationToken::new();
    let pool = ThreadPool::<Weighed>::builder()
        .workers(4)
        .layer(limit())
        .build()
        .unwrap();
    let mut jobs = scenario(&started, &hold).into_iter();
    let mut handles = vec![pool.submit(jobs.next().unwrap()).unwrap()];
    eventually("the holder runs", || started.lock().unwrap().len() == 1);
    handles.push(pool.submit(jobs.next().unwrap()).unwrap());
    eventually("the heavy job waits", || pool.stats().delayed == 1);
    handles.extend(jobs.map(|job| pool.submit(job).unwrap()));
    eventually("every light job waits behind it", || {
        pool.stats().delayed == 1 + LIGHT_JOBS
    });
    hold.cancel();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_heavy_went_first(&started);
    assert!(pool.stats().is_balanced());
}

#[test]
fn tokio_pool_serves_capacity_waits_in_arrival_order() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Arc::new(Mutex::new(Vec::new()));
        let hold = CancellationToken::new();
        let pool = TokioPool::<Weighed>::builder()
            .workers(4)
            .layer(limit())
            .build()
            .unwrap();
        let mut jobs = scenario(&started, &hold).into_iter();
        let mut handles = vec![pool.submit(jobs.next().unwrap()).await.unwrap()];
        wait_until(|| started.lock().unwrap().len() == 1).await;
        handles.push(pool.submit(jobs.next().unwrap()).await.unwrap());
        wait_until(|| pool.stats().delayed == 1).await;
        for job in jobs {
            handles.push(pool.submit(job).await.unwrap());
        }
        wait_until(|| pool.stats().delayed == 1 + LIGHT_JOBS).await;
        hold.cancel();
        for handle in handles {
            handle.await.unwrap();
        }
        assert_heavy_went_first(&started);
        assert!(pool.stats().is_balanced());
    });
}

/// As `eventually`, without blocking the runtime.
async fn wait_until(mut ready: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < give_up, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
