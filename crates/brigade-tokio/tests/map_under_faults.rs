//! `TokioPool::map` (a stream over `OrderedResults`) and the submit paths that keep a
//! job's id and handle across a full queue: across shutdowns, dropped streams, admission
//! layers, retries, runtimes and random load, every turn ends once, in order, and the
//! books balance.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use brigade_core::backend::OrderedResults;
use brigade_core::hooks::{Admission, DropReason, Middleware, QueueState};
use brigade_core::{
    AsyncJob, ErrorKind, JobContext, JobId, MapError, Rejection, SubmitError, SubmitTimeoutError,
    TrySubmitError,
};
use brigade_tokio::TokioPool;
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;

const PATIENCE: Duration = Duration::from_secs(30);

type Log = Arc<Mutex<Vec<(u64, JobId)>>>;

/// A job with a tag: it may wait on a gate, wait for its token, or pause, then logs its
/// tag with its id and returns the tag.
struct Tagged {
    tag: u64,
    gate: Option<Arc<Semaphore>>,
    until_cancelled: bool,
    pause: Duration,
    log: Log,
}

impl std::fmt::Debug for Tagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tagged({})", self.tag)
    }
}

impl AsyncJob for Tagged {
    type Output = u64;
    type Error = String;

    async fn run(&mut self, cx: &JobContext) -> Result<u64, String> {
        if let Some(gate) = &self.gate {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
        }
        if self.until_cancelled {
            cx.token().cancelled().await;
            return Err("stopped".to_string());
        }
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        self.log.lock().unwrap().push((self.tag, cx.id()));
        Ok(self.tag)
    }
}

fn job(tag: u64, log: &Log) -> Tagged {
    Tagged {
        tag,
        gate: None,
        until_cancelled: false,
        pause: Duration::ZERO,
        log: Arc::clone(log),
    }
}

fn gated(tag: u64, gate: &Arc<Semaphore>, log: &Log) -> Tagged {
    Tagged {
        gate: Some(Arc::clone(gate)),
        ..job(tag, log)
    }
}

fn until_cancelled(tag: u64, log: &Log) -> Tagged {
    Tagged {
        until_cancelled: true,
        ..job(tag, log)
    }
}

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// Yields until `done` holds; a hang becomes a failure.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}

/// How a `map` turn ended, by tag.
#[derive(Debug, PartialEq, Eq, Clone)]
enum End {
    Ok(u64),
    Refused(&'static str, u64),
    Job(ErrorKind),
}

fn end(result: Result<u64, MapError<Tagged, String>>) -> End {
    match result {
        Ok(tag) => End::Ok(tag),
        Err(MapError::Refused(SubmitError::Closed(job))) => End::Refused("closed", job.tag),
        Err(MapError::Refused(SubmitError::Rejected(job, _))) => End::Refused("rejected", job.tag),
        Err(MapError::Refused(other)) => panic!("unexpected refusal {other:?}"),
        Err(MapError::Job(error)) => End::Job(error.kind()),
    }
}

fn tag_of(end: &End) -> Option<u64> {
    match end {
        End::Ok(tag) | End::Refused(_, tag) => Some(*tag),
        End::Job(_) => None,
    }
}

/// A pool of one worker and a queue of one slot, the worker held by a gated job and the
/// queue filled: the next submit finds it full.
async fn full_pool(log: &Log) -> (Arc<TokioPool<Tagged>>, Arc<Semaphore>) {
    let pool = Arc::new(
        TokioPool::<Tagged>::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let gate = Arc::new(Semaphore::new(0));
    pool.execute(gated(1000, &gate, log)).await.unwrap();
    until("the worker to hold the blocker", || pool.stats().busy == 1).await;
    pool.execute(job(1001, log)).await.unwrap();
    assert_eq!(pool.stats().queued, 1);
    (pool, gate)
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------
// OrderedResults::poll_take
// ---------------------------------------------------------------------------------------

/// `poll_take` hands out results oldest turn first whatever order they are delivered in,
/// wakes the last waker it was given (not an earlier one), and a reused cell holds the new
/// turn's result only.
#[test]
fn poll_take_wakes_the_latest_waker_and_keeps_turns() {
    let mut results = OrderedResults::<u64, String>::new();
    let first = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let second = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let first_waker = Waker::from(Arc::clone(&first));
    let second_waker = Waker::from(Arc::clone(&second));
    let slots: Vec<_> = (0..4).map(|_| results.issue()).collect();
    let mut slots = slots.into_iter();
    let (a, b, c, d) = (
        slots.next().unwrap(),
        slots.next().unwrap(),
        slots.next().unwrap(),
        slots.next().unwrap(),
    );
    d.deliver(Ok(3));
    c.deliver(Ok(2));
    assert!(
        results
            .poll_take(&mut Context::from_waker(&first_waker))
            .is_pending()
    );
    assert!(
        results
            .poll_take(&mut Context::from_waker(&second_waker))
            .is_pending()
    );
    b.deliver(Ok(1)); // not the front turn: wakes nobody
    assert_eq!(first.0.load(Ordering::SeqCst), 0);
    assert_eq!(second.0.load(Ordering::SeqCst), 0);
    a.deliver(Ok(0));
    assert_eq!(
        first.0.load(Ordering::SeqCst),
        0,
        "the replaced waker stays quiet"
    );
    assert_eq!(
        second.0.load(Ordering::SeqCst),
        1,
        "the last waker is woken"
    );
    let mut cx = Context::from_waker(&second_waker);
    for turn in 0..4 {
        match results.poll_take(&mut cx) {
            Poll::Ready(Some(Ok(value))) => assert_eq!(value, turn),
            other => panic!("turn {turn}: {other:?}"),
        }
    }
    assert!(matches!(results.poll_take(&mut cx), Poll::Ready(None)));
    // Cells come back for new turns: each holds only its own.
    let e = results.issue();
    let f = results.issue();
    assert!(results.poll_take(&mut cx).is_pending());
    drop(e); // refused: Returned in its turn
    f.deliver(Ok(9));
    match results.poll_take(&mut cx) {
        Poll::Ready(Some(Err(error))) => assert!(error.is_returned()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        results.poll_take(&mut cx),
        Poll::Ready(Some(Ok(9)))
    ));
    assert!(results.is_empty());
}

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A delivery racing the poll from another thread is never missed (many rounds).
#[test]
fn poll_take_racing_deliveries_from_threads() {
    let mut results = OrderedResults::<u64, String>::new();
    for round in 0..2_000u64 {
        let slots: Vec<_> = (0..3).map(|_| results.issue()).collect();
        let senders: Vec<_> = slots
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, slot)| std::thread::spawn(move || slot.deliver(Ok(round * 10 + i as u64))))
            .collect();
        for i in 0..3u64 {
            let taken = loop {
                let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
                match results.poll_take(&mut Context::from_waker(&waker)) {
                    Poll::Ready(taken) => break taken,
                    Poll::Pending => std::thread::park_timeout(Duration::from_secs(30)),
                }
            };
            assert_eq!(taken.unwrap().unwrap(), round * 10 + i);
        }
        for sender in senders {
            sender.join().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// map: room, shutdown, drop
// ---------------------------------------------------------------------------------------

/// A shutdown that begins while `map` holds a job waiting for room refuses it (and every
/// later one) in its turn, with the job itself; nothing hangs and nothing runs twice.
#[tokio::test]
async fn map_refuses_the_job_waiting_for_room_when_shutdown_begins() {
    let log = log();
    let (pool, gate) = full_pool(&log).await;
    let jobs = futures_util::stream::iter((0..3).map(|tag| job(tag, &log)));
    let mut results = Box::pin(pool.map(jobs, 3));
    assert!(
        futures_util::poll!(results.next()).is_pending(),
        "waits for room"
    );
    let mut shutdown = Box::pin(pool.shutdown());
    assert!(
        futures_util::poll!(shutdown.as_mut()).is_pending(),
        "intake closes"
    );
    let ends: Vec<End> = tokio::time::timeout(PATIENCE, results.map(end).collect())
        .await
        .expect("map ended");
    assert_eq!(
        ends,
        vec![
            End::Refused("closed", 0),
            End::Refused("closed", 1),
            End::Refused("closed", 2)
        ]
    );
    gate.add_permits(100);
    let report = tokio::time::timeout(PATIENCE, shutdown).await.unwrap();
    assert!(report.unstarted.is_empty());
    let stats = pool.stats();
    assert_eq!(stats.completed, 2, "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}

/// As above with `shutdown_now` while jobs of the run are queued and one waits for room:
/// every turn ends in order, the queued ones handed back (and in the report).
#[tokio::test]
async fn map_across_shutdown_now_with_a_job_waiting_for_room() {
    let log = log();
    let pool = Arc::new(
        TokioPool::<Tagged>::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let mut input = vec![until_cancelled(0, &log)];
    input.extend((1..6).map(|tag| job(tag, &log)));
    let mut results = Box::pin(pool.map(futures_util::stream::iter(input), 4));
    // Drive the run until job 0 runs, job 1 is queued and job 2 waits for room.
    tokio::time::timeout(PATIENCE, async {
        loop {
            assert!(futures_util::poll!(results.next()).is_pending());
            let stats = pool.stats();
            if stats.busy == 1 && stats.queued == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert!(futures_util::poll!(results.next()).is_pending());
    let report = tokio::time::timeout(PATIENCE, pool.shutdown_now())
        .await
        .unwrap();
    let ends: Vec<End> = tokio::time::timeout(PATIENCE, results.map(end).collect())
        .await
        .expect("map ended");
    assert_eq!(ends.len(), 6, "{ends:?}");
    assert_eq!(ends[0], End::Job(ErrorKind::Cancelled));
    assert_eq!(ends[1], End::Job(ErrorKind::Returned));
    for (turn, end) in ends.iter().enumerate().skip(2) {
        assert_eq!(end, &End::Refused("closed", turn as u64), "{ends:?}");
    }
    assert_eq!(report.unstarted.len(), 1);
    assert_eq!(report.unstarted[0].tag, 1);
    assert!(log.lock().unwrap().is_empty(), "nothing ran to its end");
    assert!(pool.stats().is_balanced(), "{:?}", pool.stats());
}

/// `shutdown_timeout` with a job waiting for room in a `map` run driven by its own task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_across_shutdown_timeout_driven_from_a_task() {
    for round in 0..50u64 {
        let log = log();
        let pool = Arc::new(
            TokioPool::<Tagged>::builder()
                .workers(1)
                .queue_capacity(1)
                .build()
                .unwrap(),
        );
        let mut input = vec![until_cancelled(0, &log)];
        input.extend((1..20).map(|tag| job(tag, &log)));
        let runner = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.map(futures_util::stream::iter(input), 5)
                    .map(end)
                    .collect::<Vec<_>>()
                    .await
            })
        };
        until("job 0 to run", || pool.stats().busy == 1).await;
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        let report =
            tokio::time::timeout(PATIENCE, pool.shutdown_timeout(Duration::from_millis(1)))
                .await
                .unwrap();
        let ends = tokio::time::timeout(PATIENCE, runner)
            .await
            .expect("map ended")
            .unwrap();
        assert_eq!(ends.len(), 20, "{ends:?}");
        assert_eq!(ends[0], End::Job(ErrorKind::Cancelled));
        let mut returned = 0;
        for (turn, end) in ends.iter().enumerate().skip(1) {
            match end {
                End::Job(ErrorKind::Returned) => returned += 1,
                End::Ok(tag) | End::Refused("closed", tag) => assert_eq!(*tag, turn as u64),
                other => panic!("turn {turn}: {other:?} in {ends:?}"),
            }
        }
        assert_eq!(report.unstarted.len(), returned);
        assert!(pool.stats().is_balanced(), "{:?}", pool.stats());
    }
}

/// Dropping a `map` run whose job was woken for room passes the wake-up on: a submitter
/// waiting behind it gets the room.
#[tokio::test]
async fn map_dropped_after_its_wakeup_passes_the_room_on() {
    let log = log();
    let (pool, gate) = full_pool(&log).await;
    let jobs = futures_util::stream::iter((0..3).map(|tag| job(tag, &log)));
    let mut results = Box::pin(pool.map(jobs, 3));
    assert!(
        futures_util::poll!(results.next()).is_pending(),
        "waits for room"
    );
    let waiting = {
        let pool = Arc::clone(&pool);
        let log = Arc::clone(&log);
        tokio::spawn(async move { pool.submit(job(77, &log)).await.unwrap().await })
    };
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    // Room: the worker takes the filler; the first waiter (the map run) is woken.
    gate.add_permits(100);
    until("the filler to run", || pool.stats().queued == 0).await;
    drop(results);
    let ran = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the room was passed on")
        .unwrap();
    assert_eq!(ran, Ok(77));
    pool.wait_idle().await;
    let ran: Vec<u64> = log.lock().unwrap().iter().map(|(tag, _)| *tag).collect();
    assert!(
        !ran.iter().any(|tag| *tag < 3),
        "the dropped run's job never ran: {ran:?}"
    );
    assert!(pool.stats().is_balanced(), "{:?}", pool.stats());
}

/// Dropping a `map` run while its job waits for room: the job is not run, not counted,
/// and the run's accepted jobs finish.
#[tokio::test]
async fn map_dropped_while_its_job_waits_for_room() {
    let log = log();
    let pool = TokioPool::<Tagged>::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let mut input = vec![gated(0, &gate, &log)];
    input.extend((1..10).map(|tag| job(tag, &log)));
    let mut results = Box::pin(pool.map(futures_util::stream::iter(input), 8));
    tokio::time::timeout(PATIENCE, async {
        loop {
            assert!(futures_util::poll!(results.next()).is_pending());
            let stats = pool.stats();
            if stats.busy == 1 && stats.queued == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    drop(results);
    gate.add_permits(100);
    tokio::time::timeout(PATIENCE, pool.wait_idle())
        .await
        .unwrap();
    let stats = pool.stats();
    assert_eq!(stats.submitted, 2, "{stats:?}");
    assert_eq!(stats.completed, 2, "{stats:?}");
    assert!(stats.is_balanced());
}

// ---------------------------------------------------------------------------------------
// map: admission layers
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum WhenFull {
    Reject,
    DropNewest,
    EvictOldest,
}

struct FullQueue {
    when_full: WhenFull,
    dropped: Arc<Mutex<Vec<(u64, DropReason)>>>,
}

impl Middleware<Tagged, String> for FullQueue {
    fn admit(&self, _: &Tagged, queue: QueueState) -> Admission {
        if !queue.is_full() {
            return Admission::Accept;
        }
        match self.when_full {
            WhenFull::Reject => Admission::Reject(Rejection::new("full")),
            WhenFull::DropNewest => Admission::DropNewest,
            WhenFull::EvictOldest => Admission::EvictOldest,
        }
    }

    fn dropped(&self, job: Tagged, reason: DropReason) {
        self.dropped.lock().unwrap().push((job.tag, reason));
    }
}

async fn map_through_layer(when_full: WhenFull, flavor_multi: bool) {
    let _ = flavor_multi;
    for limit in [1usize, 2, 3, 8, 32] {
        let log = log();
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let pool = TokioPool::<Tagged>::builder()
            .workers(1)
            .queue_capacity(1)
            .layer(FullQueue {
                when_full,
                dropped: Arc::clone(&dropped),
            })
            .build()
            .unwrap();
        let n = 200u64;
        let jobs = futures_util::stream::iter(0..n).map(|tag| Tagged {
            pause: if tag % 7 == 0 {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            },
            ..job(tag, &log)
        });
        let ends: Vec<End> =
            tokio::time::timeout(PATIENCE, pool.map(jobs, limit).map(end).collect())
                .await
                .unwrap_or_else(|_| panic!("{when_full:?} limit {limit}: map hung"));
        assert_eq!(ends.len(), n as usize);
        let dropped: Vec<u64> = dropped
            .lock()
            .unwrap()
            .iter()
            .map(|(tag, _)| *tag)
            .collect();
        let ran: Vec<u64> = log.lock().unwrap().iter().map(|(tag, _)| *tag).collect();
        for (turn, end) in ends.iter().enumerate() {
            let turn = turn as u64;
            match end {
                End::Ok(tag) => assert_eq!(*tag, turn, "{when_full:?} limit {limit}"),
                End::Refused("rejected", tag) => {
                    assert!(matches!(when_full, WhenFull::Reject));
                    assert_eq!(*tag, turn);
                }
                End::Job(ErrorKind::Dropped) => {
                    assert!(dropped.contains(&turn), "turn {turn} dropped: {dropped:?}");
                }
                other => panic!("{when_full:?} limit {limit} turn {turn}: {other:?}"),
            }
        }
        let ok = ends.iter().filter(|e| matches!(e, End::Ok(_))).count();
        assert_eq!(ok, ran.len(), "each accepted job ran once");
        tokio::time::timeout(PATIENCE, pool.wait_idle())
            .await
            .unwrap();
        let stats = pool.stats();
        assert!(
            stats.is_balanced(),
            "{when_full:?} limit {limit}: {stats:?}"
        );
        assert_eq!(stats.completed as usize, ok);
        assert_eq!(
            ends.iter().map(tag_of).filter(Option::is_some).count()
                + ends
                    .iter()
                    .filter(|e| matches!(e, End::Job(ErrorKind::Dropped)))
                    .count(),
            n as usize
        );
    }
}

#[tokio::test]
async fn map_with_reject_layer_yields_refusals_in_turn() {
    map_through_layer(WhenFull::Reject, false).await;
}

#[tokio::test]
async fn map_with_drop_newest_layer_yields_drops_in_turn() {
    map_through_layer(WhenFull::DropNewest, false).await;
}

#[tokio::test]
async fn map_with_evict_oldest_layer_yields_evictions_in_turn() {
    map_through_layer(WhenFull::EvictOldest, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_with_layers_on_a_multi_thread_runtime() {
    map_through_layer(WhenFull::Reject, true).await;
    map_through_layer(WhenFull::DropNewest, true).await;
    map_through_layer(WhenFull::EvictOldest, true).await;
}

/// A layer that accepts a job while the queue is full (so it waits for room) and rejects
/// it when it is offered again: the refusal comes back in the job's turn.
struct RejectOnSecondLook {
    seen: Mutex<std::collections::HashSet<u64>>,
}

impl Middleware<Tagged, String> for RejectOnSecondLook {
    fn admit(&self, job: &Tagged, queue: QueueState) -> Admission {
        if job.tag % 2 == 1 && queue.is_full() {
            self.seen.lock().unwrap().insert(job.tag);
            return Admission::Accept;
        }
        if self.seen.lock().unwrap().contains(&job.tag) {
            return Admission::Reject(Rejection::new("second look"));
        }
        Admission::Accept
    }
}

#[tokio::test]
async fn map_job_rejected_after_waiting_for_room_is_refused_in_its_turn() {
    let log = log();
    let pool = TokioPool::<Tagged>::builder()
        .workers(1)
        .queue_capacity(1)
        .layer(RejectOnSecondLook {
            seen: Mutex::new(Default::default()),
        })
        .build()
        .unwrap();
    let jobs = futures_util::stream::iter(0..60u64).map(|tag| job(tag, &log));
    let ends: Vec<End> = tokio::time::timeout(PATIENCE, pool.map(jobs, 4).map(end).collect())
        .await
        .expect("map ended");
    for (turn, end) in ends.iter().enumerate() {
        assert_eq!(tag_of(end), Some(turn as u64), "{ends:?}");
    }
    assert_eq!(ends.len(), 60);
    tokio::time::timeout(PATIENCE, pool.wait_idle())
        .await
        .unwrap();
    assert!(pool.stats().is_balanced());
}

// ---------------------------------------------------------------------------------------
// map: order and accounting under load
// ---------------------------------------------------------------------------------------

async fn stress(seed: u64, multi: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..12 {
        let workers = rng.random_range(1..=3usize);
        let capacity = rng.random_range(1..=3usize);
        let limit = rng.random_range(1..=10usize);
        let n = rng.random_range(0..300u64);
        let log = log();
        let pool = TokioPool::<Tagged>::builder()
            .workers(workers)
            .queue_capacity(capacity)
            .build()
            .unwrap();
        let pauses: Vec<u64> = (0..n).map(|_| rng.random_range(0..3u64)).collect();
        let jobs = futures_util::stream::iter(0..n).then(|tag| {
            let log = Arc::clone(&log);
            let pause = pauses[tag as usize];
            async move {
                if tag % 5 == 0 {
                    tokio::task::yield_now().await;
                }
                Tagged {
                    pause: if pause == 2 {
                        Duration::from_micros(200)
                    } else {
                        Duration::ZERO
                    },
                    ..job(tag, &log)
                }
            }
        });
        let results: Vec<u64> = tokio::time::timeout(
            PATIENCE,
            pool.map(jobs, limit).map(|r| r.unwrap()).collect(),
        )
        .await
        .unwrap_or_else(|_| {
            panic!("hung: multi {multi} workers {workers} cap {capacity} limit {limit} n {n}")
        });
        assert_eq!(results, (0..n).collect::<Vec<_>>());
        let stats = pool.stats();
        assert_eq!(stats.completed, n);
        assert!(stats.is_balanced());
        let mut ran: Vec<u64> = log.lock().unwrap().iter().map(|(tag, _)| *tag).collect();
        ran.sort_unstable();
        assert_eq!(ran, (0..n).collect::<Vec<_>>(), "each job ran once");
    }
}

#[tokio::test]
async fn map_keeps_order_and_books_on_a_current_thread_runtime() {
    stress(1, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_keeps_order_and_books_on_a_multi_thread_runtime() {
    for seed in 0..4 {
        stress(seed + 10, true).await;
    }
}

/// A pool on a runtime of its own, mapped from a current-thread runtime: the wake-ups
/// cross runtimes.
#[test]
fn map_on_an_own_runtime_pool_from_a_current_thread_runtime() {
    let pool = TokioPool::<Tagged>::builder()
        .own_runtime(2)
        .workers(2)
        .queue_capacity(1)
        .build()
        .unwrap();
    let log = log();
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    caller.block_on(async {
        let jobs = futures_util::stream::iter(0..500u64).map(|tag| job(tag, &log));
        let results: Vec<u64> =
            tokio::time::timeout(PATIENCE, pool.map(jobs, 3).map(|r| r.unwrap()).collect())
                .await
                .expect("map ended");
        assert_eq!(results, (0..500).collect::<Vec<_>>());
    });
    assert!(pool.stats().is_balanced());
}

/// A `map` run polled from changing tasks (moved between them) still gets its wake-ups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_polled_from_changing_tasks() {
    let log = log();
    let pool: &'static TokioPool<Tagged> = Box::leak(Box::new(
        TokioPool::<Tagged>::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    ));
    let jobs = futures_util::stream::iter(0..300u64).map(move |tag| Tagged {
        pause: Duration::from_micros(if tag % 3 == 0 { 100 } else { 0 }),
        ..job(tag, &log)
    });
    let mut results = Box::pin(pool.map(jobs, 4));
    let mut next = 0u64;
    loop {
        let (item, back) = tokio::time::timeout(
            PATIENCE,
            tokio::spawn(async move {
                let item = results.next().await;
                (item, results)
            }),
        )
        .await
        .expect("no hang")
        .unwrap();
        results = back;
        match item {
            Some(result) => {
                assert_eq!(result.unwrap(), next);
                next += 1;
            }
            None => break,
        }
    }
    assert_eq!(next, 300);
}

// ---------------------------------------------------------------------------------------
// submit, try_submit, submit_timeout, execute
// ---------------------------------------------------------------------------------------

/// `submit_timeout` whose time runs out while it waits for room gives back the job it was
/// given; nothing of it is counted, and the room it may have been woken for is passed on.
#[tokio::test]
async fn submit_timeout_gives_back_its_job_after_waiting_for_room() {
    let log = log();
    let (pool, gate) = full_pool(&log).await;
    let refused = pool
        .submit_timeout(job(7, &log), Duration::from_millis(20))
        .await;
    match refused {
        Err(SubmitTimeoutError::Timeout(job)) => assert_eq!(job.tag, 7),
        other => panic!("{other:?}"),
    }
    let stats = pool.stats();
    assert_eq!(stats.submitted, 2, "{stats:?}");
    gate.add_permits(100);
    let handle = tokio::time::timeout(PATIENCE, pool.submit_timeout(job(8, &log), PATIENCE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(handle.await, Ok(8));
    pool.wait_idle().await;
    assert!(pool.stats().is_balanced());
}

/// Submits waiting for room are refused as `Closed`, with their own job, when a shutdown
/// begins; `try_submit` on a full queue gives its job back.
#[tokio::test]
async fn submits_waiting_for_room_come_back_closed_with_their_job() {
    let log = log();
    let (pool, gate) = full_pool(&log).await;
    match pool.try_submit(job(5, &log)) {
        Err(TrySubmitError::Full(job)) => assert_eq!(job.tag, 5),
        other => panic!("{other:?}"),
    }
    let waiting: Vec<_> = (0..3u64)
        .map(|i| {
            let pool = Arc::clone(&pool);
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                match i {
                    0 => pool
                        .submit(job(10, &log))
                        .await
                        .map(drop)
                        .map_err(|e| e.into_inner().tag),
                    1 => pool
                        .execute(job(11, &log))
                        .await
                        .map_err(|e| e.into_inner().tag),
                    _ => pool
                        .submit_timeout(job(12, &log), PATIENCE)
                        .await
                        .map(drop)
                        .map_err(|e| match e {
                            SubmitTimeoutError::Closed(job) => job.tag,
                            other => panic!("{other:?}"),
                        }),
                }
            })
        })
        .collect();
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    let mut shutdown = Box::pin(pool.shutdown());
    assert!(futures_util::poll!(shutdown.as_mut()).is_pending());
    for (i, waiter) in waiting.into_iter().enumerate() {
        let result = tokio::time::timeout(PATIENCE, waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(result, Err(10 + i as u64));
    }
    gate.add_permits(100);
    tokio::time::timeout(PATIENCE, shutdown).await.unwrap();
    assert!(pool.stats().is_balanced());
}

#[tokio::test]
async fn map_with_no_turn_in_flight_is_woken_by_room() {
    let log = log();
    let (pool, gate) = full_pool(&log).await;
    let (send, mut receive) = tokio::sync::mpsc::channel::<Tagged>(1);
    let jobs = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
    let mut results = Box::pin(pool.map(jobs, 2));
    send.send(job(0, &log)).await.unwrap();
    assert!(
        futures_util::poll!(results.next()).is_pending(),
        "waits for room"
    );
    let opener = {
        let gate = Arc::clone(&gate);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            gate.add_permits(100);
        })
    };
    let first = tokio::time::timeout(PATIENCE, results.next())
        .await
        .expect("woken for room");
    assert_eq!(first.map(end), Some(End::Ok(0)));
    for tag in 1..20 {
        send.send(job(tag, &log)).await.unwrap();
        let next = tokio::time::timeout(PATIENCE, results.next())
            .await
            .expect("the next result");
        assert_eq!(next.map(end), Some(End::Ok(tag)));
    }
    drop(send);
    assert!(results.next().await.is_none());
    opener.await.unwrap();
    pool.wait_idle().await;
    assert!(pool.stats().is_balanced());
}

/// The runtime the pool runs on is dropped while a `map` run (driven from another
/// runtime) has a job running, one queued and one waiting for room: every turn ends, in
/// order, and the books balance.
#[test]
fn map_across_the_pool_runtime_being_dropped() {
    let log = log();
    let host = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pool = host.block_on(async {
        TokioPool::<Tagged>::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap()
    });
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut input = vec![Tagged {
        pause: Duration::from_secs(3600),
        ..job(0, &log)
    }];
    input.extend((1..6).map(|tag| job(tag, &log)));
    let mut results = Box::pin(pool.map(futures_util::stream::iter(input), 4));
    caller.block_on(async {
        tokio::time::timeout(PATIENCE, async {
            loop {
                assert!(futures_util::poll!(results.next()).is_pending());
                let stats = pool.stats();
                if stats.busy == 1 && stats.queued == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
        assert!(futures_util::poll!(results.next()).is_pending());
    });
    drop(host);
    let ends: Vec<End> = caller.block_on(async {
        tokio::time::timeout(PATIENCE, results.map(end).collect())
            .await
            .expect("map ended")
    });
    assert_eq!(ends.len(), 6, "{ends:?}");
    assert_eq!(ends[0], End::Job(ErrorKind::Cancelled), "{ends:?}");
    assert_eq!(ends[1], End::Job(ErrorKind::Returned), "{ends:?}");
    for (turn, end) in ends.iter().enumerate().skip(2) {
        assert_eq!(end, &End::Refused("closed", turn as u64), "{ends:?}");
    }
    assert!(pool.stats().is_balanced(), "{:?}", pool.stats());
}

/// Retries re-enter the queue past its capacity: `map` waiting for room behind them still
/// gets every turn, in order.
struct RetryOddOnce;

impl Middleware<Tagged, String> for RetryOddOnce {
    fn after_run(
        &self,
        _: &Tagged,
        run: &brigade_core::hooks::RunReport<'_, String>,
        now: std::time::Instant,
    ) -> brigade_core::hooks::AfterRun {
        match run.outcome {
            brigade_core::hooks::RunOutcome::Failed(_) if run.attempt < 3 => {
                brigade_core::hooks::AfterRun::RetryAt(now)
            }
            _ => brigade_core::hooks::AfterRun::Done,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_behind_retries_that_overfill_the_queue() {
    let log = log();
    let pool = TokioPool::<Tagged>::builder()
        .workers(2)
        .queue_capacity(1)
        .layer(RetryOddOnce)
        .build()
        .unwrap();
    // Odd tags fail their first two runs (a gate of zero permits closed at once).
    let closed = Arc::new(Semaphore::new(0));
    closed.close();
    let jobs = futures_util::stream::iter(0..200u64).map(|tag| Tagged {
        gate: (tag % 2 == 1).then(|| Arc::clone(&closed)),
        ..job(tag, &log)
    });
    let ends: Vec<End> = tokio::time::timeout(PATIENCE, pool.map(jobs, 6).map(end).collect())
        .await
        .expect("map ended");
    for (turn, end) in ends.iter().enumerate() {
        if turn % 2 == 0 {
            assert_eq!(end, &End::Ok(turn as u64));
        } else {
            assert_eq!(end, &End::Job(ErrorKind::Failed), "turn {turn}");
        }
    }
    tokio::time::timeout(PATIENCE, pool.wait_idle())
        .await
        .unwrap();
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.retried, 200, "{stats:?}");
}
