//! The submit path shared by `submit`, `try_submit`, `submit_timeout` and `execute`:
//! through the gate, the admission hook, then into the bounded queue.

use std::sync::Arc;

use brigade_core::backend::{Done, Reply};
use brigade_core::hooks::{Admission, DropReason, QueueState};
use brigade_core::{Job, JobHandle, Rejection};

use crate::ready_queue::PushError;
pub(crate) use crate::ready_queue::Wait;
use crate::shared::{Engine, Shared};
use crate::task::Task;

/// Why a job came back.
pub(crate) enum Refusal<J> {
    Closed(J),
    Full(J),
    Timeout(J),
    Rejected(J, Rejection),
}

type Handle<J> = JobHandle<<J as Job>::Output, <J as Job>::Error>;
type JobDone<J> = Done<<J as Job>::Output, <J as Job>::Error>;

/// Where a submitted job's result goes. A job refused before the pool accepts it drops a
/// turn's slot, which delivers `Returned` into the turn.
type JobReply<J> = Reply<<J as Job>::Output, <J as Job>::Error>;

/// Submits `job`; returns its handle when `reply` asks for one.
pub(crate) fn submit<J: Job>(
    shared: &Arc<Shared<J>>,
    job: J,
    reply: JobReply<J>,
    wait: Wait,
) -> Result<Option<Handle<J>>, Refusal<J>> {
    let Some(_pass) = shared.intake.enter() else {
        return Err(Refusal::Closed(job));
    };
    if shared.driver.layers().sees_submits() {
        let queue = QueueState {
            len: shared.ready.len(),
            capacity: shared.ready.capacity(),
        };
        match shared.driver.admit(&job, queue) {
            (Admission::Accept, _) => {}
            (Admission::Reject(reason), _) => return Err(Refusal::Rejected(job, reason)),
            (Admission::DropNewest, index) => {
                let (handle, done) = accept(shared, reply);
                let task = Task::new(job, done);
                shared
                    .driver
                    .drop_admitted(&Engine(shared), task, index, DropReason::Newest);
                return Ok(handle);
            }
            (Admission::EvictOldest, index) => {
                let (handle, done) = accept(shared, reply);
                return match push_evicting(shared, Task::new(job, done), index) {
                    Ok(()) => Ok(handle),
                    Err(refused) => Err(refuse(shared, refused, wait)),
                };
            }
        }
    }
    // A full queue refuses `try_submit` before a handle is allocated for nothing. If room
    // appears meanwhile the caller saw a full queue, which is what `Full` says.
    if matches!(wait, Wait::Never) && shared.ready.is_full() {
        return Err(Refusal::Full(job));
    }
    let (handle, done) = accept(shared, reply);
    let message = Task::new(job, done);
    let sent = shared.ready.push(message, wait);
    match sent {
        Ok(()) => {
            shared.after_enqueue();
            Ok(handle)
        }
        Err(refused) => Err(refuse(shared, refused, wait)),
    }
}

/// Queues `task`, dropping the oldest queued jobs while there is no room. Submitters
/// racing this one may take the room an eviction made, so it evicts until its own push
/// lands: the new job is never refused for a full queue, as the layer decided.
fn push_evicting<J: Job>(
    shared: &Arc<Shared<J>>,
    mut task: Task<J>,
    index: Option<usize>,
) -> Result<(), PushError<J>> {
    loop {
        match shared.ready.push(task, Wait::Never) {
            Ok(()) => {
                shared.after_enqueue();
                return Ok(());
            }
            Err(PushError::NoRoom(back)) => {
                task = back;
                if let Ok(oldest) = shared.ready.try_pop() {
                    let engine = Engine(shared);
                    shared
                        .driver
                        .drop_admitted(&engine, oldest, index, DropReason::Evicted);
                }
            }
            Err(closed) => return Err(closed),
        }
    }
}

/// A job the queue did not take after all: not submitted, and the handle nobody saw
/// resolves as returned when its completer drops here.
fn refuse<J: Job>(shared: &Shared<J>, refused: PushError<J>, wait: Wait) -> Refusal<J> {
    shared.intake.refuse();
    shared.idle.notify(|| shared.in_flight());
    match refused {
        PushError::NoRoom(task) if matches!(wait, Wait::Never) => Refusal::Full(task.job),
        PushError::NoRoom(task) => Refusal::Timeout(task.job),
        PushError::Disconnected(task) | PushError::Closed(task) => Refusal::Closed(task.job),
    }
}

/// Counts the job as submitted and gives it an id (and a handle when wanted).
fn accept<J: Job>(shared: &Shared<J>, reply: JobReply<J>) -> (Option<Handle<J>>, JobDone<J>) {
    reply.accept(shared.intake.next_id(), shared.driver.handles())
}
