//! The three shutdowns. Each one:
//!
//! 1. closes the submit gate, turns back the submitters waiting for room (their jobs come
//!    back as `Closed`) and waits for the submitters inside it (see `gate`), so the set of
//!    accepted jobs is final;
//! 2. waits for every accepted job to reach a terminal state: gracefully (running
//!    everything, delayed retries included), or, past its deadline, by cancelling the pool
//!    token and handing back whatever has not started (`aborting`); called from one of the
//!    pool's own jobs, it waits for everything but that job and the jobs that wait for it,
//!    which it hands back;
//! 3. stops the workers (one stop message each) and the timer, and joins their threads.
//!
//! A shutdown called from one of the pool's own jobs while another is under way returns
//! at once (after stopping the jobs, if its deadline says so): the other waits for the
//! calling job, so the caller cannot wait for it.

use std::sync::{Arc, TryLockError};
use std::time::{Duration, Instant};

use brigade_core::{Job, ShutdownReport, instant_after};

use crate::shared::{Engine, Shared};
use crate::sync::lock_std as lock;

/// How long a shutdown lets workers hand back a batch before it drains the queues again;
/// only an aborting shutdown loops on this.
const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// Which shutdown.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Graceful,
    Deadline(Instant),
    Now,
}

pub(crate) fn shut_down<J: Job>(shared: &Arc<Shared<J>>, mode: Mode) -> ShutdownReport<J> {
    let mut shut_down = match shared.shut_down.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => {
            escalate(shared, mode);
            if crate::worker::is_own_worker(shared) {
                // Called from one of the pool's jobs: the shutdown under way waits for
                // this job, so this one cannot wait for it.
                return ShutdownReport::default();
            }
            lock(&shared.shut_down)
        }
    };
    let mut report = ShutdownReport::default();
    if *shut_down {
        return report;
    }
    let finished_before = shared.stats().finished();
    // Jobs handed back before this shutdown (a hook panicked before their start) come back
    // in its report too, but they were counted before it.
    let handed_back_before = shared.driver.take_handed_back();
    shared.intake.close();
    // Submitters waiting for room leave with their jobs: the room may only ever come from
    // the worker of the job that submits (a job submitting to its own full pool).
    shared.ready.close();
    // If a worker could not be spawned when a job arrived (the system refused a thread),
    // try again now, so the jobs this shutdown waits for have someone to run them.
    shared.after_enqueue();
    let idle = match mode {
        Mode::Graceful => {
            shared.intake.wait_empty_until(None);
            shared.wait_idle_until(None)
        }
        Mode::Deadline(deadline) => {
            // A submitter blocked on a full queue of slow jobs may hold the gate past the
            // deadline; `abort` then makes room for it.
            shared.intake.wait_empty_until(Some(deadline)) && shared.wait_idle_until(Some(deadline))
        }
        Mode::Now => false,
    };
    if !idle {
        abort(shared, &mut report);
    }
    // A shutdown from inside one of the pool's jobs leaves what waits for that job: it goes
    // back, before the timer stops with the delayed ones.
    hand_back_unstarted(shared);
    stop_threads(shared);
    // Nothing can be queued any more; this only catches what a worker never came back for.
    hand_back_unstarted(shared);
    let handed_back_now = shared.driver.take_handed_back();
    let finished = shared.stats().finished() - finished_before;
    let handed_back_now_count = handed_back_now.len() as u64;
    report.unstarted = handed_back_before;
    report.unstarted.extend(handed_back_now);
    report.finished = finished.saturating_sub(handed_back_now_count);
    // The pool is at rest: its books as the report leaves them.
    #[cfg(feature = "metrics")]
    shared.publish_metrics();
    *shut_down = true;
    report
}

/// A shutdown with a deadline, or `shutdown_now`, while another shutdown holds the lock
/// (a graceful one, perhaps, waiting for jobs that will not end): past its own deadline
/// this one stops the jobs, so the other ends too; the caller then waits for it. The jobs
/// it hands back go out in the other shutdown's report; its own comes back empty.
fn escalate<J: Job>(shared: &Arc<Shared<J>>, mode: Mode) {
    let stop = match mode {
        Mode::Graceful => false,
        Mode::Deadline(deadline) => {
            !(shared.intake.wait_empty_until(Some(deadline))
                && shared.wait_idle_until(Some(deadline)))
        }
        Mode::Now => true,
    };
    if stop {
        abort(shared, &mut ShutdownReport::default());
    }
}

/// Cancels the running jobs and hands back the unstarted ones until nothing is in flight.
fn abort<J: Job>(shared: &Arc<Shared<J>>, report: &mut ShutdownReport<J>) {
    // Workers hand back what they dequeue from now on, so a submitter blocked on a full
    // queue gets room and leaves the gate.
    shared.driver.abort();
    let engine = Engine(shared);
    // The workers may all be inside jobs that wait for the pool's token, which is
    // cancelled only once the set of accepted jobs is final: hand back what is queued
    // from here too, until no submitter waits for room.
    let mut handed_back = false;
    loop {
        while let Ok(task) = shared.ready.try_pop() {
            shared.driver.hand_back(&engine, task);
            handed_back = true;
        }
        if shared
            .intake
            .wait_empty_until(Some(instant_after(Instant::now(), DRAIN_INTERVAL)))
        {
            break;
        }
    }
    let stats = shared.stats();
    report.deadline_passed = handed_back || stats.in_flight() > 0;
    report.cancelled = stats.busy as u64;
    shared.driver.token().cancel();
    loop {
        hand_back_unstarted(shared);
        if shared.wait_idle_until(Some(instant_after(Instant::now(), DRAIN_INTERVAL))) {
            return;
        }
    }
}

/// Hands back every job not started: queued, delayed or parked.
fn hand_back_unstarted<J: Job>(shared: &Arc<Shared<J>>) {
    let engine = Engine(shared);
    while let Ok(task) = shared.ready.try_pop() {
        shared.driver.hand_back(&engine, task);
    }
    if let Some(hooks) = &shared.hooks {
        let mut unstarted = hooks.take_unstarted();
        unstarted.extend(shared.driver.take_parked());
        for task in unstarted {
            shared.driver.hand_back(&engine, task);
        }
    }
}

fn stop_threads<J: Job>(shared: &Arc<Shared<J>>) {
    // One stop per worker; a worker that died unwinding took itself off the roster and
    // leaves its stop unread, which is harmless.
    shared.signals.stop(shared.roster.stop());
    if let Some(hooks) = &shared.hooks {
        hooks.timer.stop();
    }
    shared.threads.join_all();
}

/// Model: `abort`'s order against a submitter blocked on a full queue while the only
/// worker sits in a job that waits for the pool's token. Waiting for the gate to empty
/// before handing back what is queued, or before cancelling the token, waits for good:
/// the submitter needs room, the worker needs the token. The queue is a stand-in (one
/// slot, a push waits for room); the gate is the pool's.
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use std::collections::VecDeque;

    use loom::sync::Arc;

    use super::*;
    use crate::submit_gate::SubmitGate;
    use crate::sync::{Condvar, Mutex, lock};

    /// A bounded queue of one job.
    struct Queue {
        jobs: Mutex<VecDeque<u32>>,
        room: Condvar,
    }

    impl Queue {
        fn push(&self, job: u32) {
            let mut jobs = lock(&self.jobs);
            while !jobs.is_empty() {
                jobs = self.room.wait(jobs).unwrap();
            }
            jobs.push_back(job);
        }

        fn take_all(&self) -> Vec<u32> {
            let taken = lock(&self.jobs).drain(..).collect();
            self.room.notify_all();
            taken
        }
    }

    /// The pool's token, as a flag a job waits for.
    struct Token {
        cancelled: Mutex<bool>,
        changed: Condvar,
    }

    #[test]
    fn loom_an_abort_makes_room_for_a_submitter_behind_a_job_that_waits_for_its_token() {
        loom::model(|| {
            let gate = Arc::new(SubmitGate::new());
            let queue = Arc::new(Queue {
                jobs: Mutex::new(VecDeque::from([1])),
                room: Condvar::new(),
            });
            let token = Arc::new(Token {
                cancelled: Mutex::new(false),
                changed: Condvar::new(),
            });
            let worker = {
                let token = Arc::clone(&token);
                loom::thread::spawn(move || {
                    let mut cancelled = lock(&token.cancelled);
                    while !*cancelled {
                        cancelled = token.changed.wait(cancelled).unwrap();
                    }
                })
            };
            let submitter = {
                let (gate, queue) = (Arc::clone(&gate), Arc::clone(&queue));
                loom::thread::spawn(move || match gate.enter() {
                    Some(_pass) => {
                        queue.push(2);
                        true
                    }
                    None => false,
                })
            };

            // The shutdown closes the gate, then aborts in `abort`'s order.
            gate.close();
            let mut handed_back = Vec::new();
            loop {
                handed_back.extend(queue.take_all());
                let until = instant_after(Instant::now(), DRAIN_INTERVAL);
                if gate.wait_empty_until(Some(until)) {
                    break;
                }
            }
            *lock(&token.cancelled) = true;
            token.changed.notify_all();
            handed_back.extend(queue.take_all());

            worker.join().unwrap();
            let accepted = submitter.join().unwrap();
            handed_back.sort_unstable();
            let expected: &[u32] = if accepted { &[1, 2] } else { &[1] };
            assert_eq!(handed_back, expected, "every queued job handed back, once");
        });
    }
}
