//! The submit path shared by `submit`, `try_submit`, `submit_timeout` and `execute`:
//! through the gate, the admission hook, then into the bounded queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use brigade_core::backend::Done;
use brigade_core::middleware::{Admission, DropReason, QueueState};
use brigade_core::{Job, JobHandle, JobId, Rejection};
use crossbeam_channel::{SendTimeoutError, TrySendError};

use crate::shared::{Engine, Shared};
use crate::task::Task;

/// How long a submit may wait for room.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    Block,
    Never,
    Until(Instant),
}

/// Why a job came back.
pub(crate) enum Refusal<J> {
    Closed(J),
    Full(J),
    Timeout(J),
    Rejected(J, Rejection),
}

type Handle<J> = JobHandle<<J as Job>::Output, <J as Job>::Error>;
type JobDone<J> = Done<<J as Job>::Output, <J as Job>::Error>;

/// Submits `job`, with a handle when `with_handle`.
pub(crate) fn submit<J: Job>(
    shared: &Arc<Shared<J>>,
    job: J,
    with_handle: bool,
    wait: Wait,
) -> Result<Option<Handle<J>>, Refusal<J>> {
    let Some(_pass) = shared.gate.enter() else {
        return Err(Refusal::Closed(job));
    };
    if shared.hooks.is_some() {
        let queue = QueueState {
            len: shared.rx.len(),
            capacity: shared.capacity,
        };
        match shared.driver.admit(&job, queue) {
            (Admission::Accept, _) => {}
            (Admission::Reject(reason), _) => return Err(Refusal::Rejected(job, reason)),
            (Admission::DropNewest, index) => {
                let (handle, done) = accept(shared, with_handle);
                let task = Task::new(job, done);
                shared
                    .driver
                    .drop_admitted(&Engine(shared), task, index, DropReason::Newest);
                return Ok(handle);
            }
            (Admission::EvictOldest, index) => {
                if let Ok(oldest) = shared.rx.try_recv() {
                    shared.driver.drop_admitted(
                        &Engine(shared),
                        oldest,
                        index,
                        DropReason::Evicted,
                    );
                }
            }
        }
    }
    // A full queue refuses `try_submit` before a handle is allocated for nothing. If room
    // appears meanwhile the caller saw a full queue, which is what `Full` says.
    if matches!(wait, Wait::Never) && shared.tx.is_full() {
        return Err(Refusal::Full(job));
    }
    let (handle, done) = accept(shared, with_handle);
    let message = Task::new(job, done);
    let sent = match wait {
        Wait::Block => shared.tx.send(message).map_err(|error| error.into_inner()),
        Wait::Never => shared.tx.try_send(message).map_err(|error| match error {
            TrySendError::Full(message) | TrySendError::Disconnected(message) => message,
        }),
        Wait::Until(deadline) => shared
            .tx
            .send_timeout(message, deadline.saturating_duration_since(Instant::now()))
            .map_err(|error| match error {
                SendTimeoutError::Timeout(message) | SendTimeoutError::Disconnected(message) => {
                    message
                }
            }),
    };
    match sent {
        Ok(()) => {
            shared.after_enqueue();
            Ok(handle)
        }
        Err(task) => {
            // Never accepted after all: not submitted, and the handle nobody saw resolves
            // as returned when its completer drops here.
            shared.refused.fetch_add(1, Ordering::Release);
            shared.idle.notify(|| shared.in_flight());
            let job = task.job;
            Err(match wait {
                Wait::Never => Refusal::Full(job),
                Wait::Block | Wait::Until(_) => Refusal::Timeout(job),
            })
        }
    }
}

/// Counts the job as submitted and gives it an id (and a handle when wanted).
fn accept<J: Job>(shared: &Shared<J>, with_handle: bool) -> (Option<Handle<J>>, JobDone<J>) {
    let id = JobId::new(shared.entered.fetch_add(1, Ordering::AcqRel) + 1);
    if with_handle {
        let (handle, completer) = JobHandle::new(id, shared.driver.token());
        (Some(handle), Done::Handle(completer))
    } else {
        (None, Done::Detached(id))
    }
}
