//! The pool's OS threads (workers and the timer): how they are named and sized, and their
//! handles, joined at shutdown.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

use crate::sync::lock_std as lock;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Threads {
    name: String,
    stack_size: Option<usize>,
    next_worker: AtomicUsize,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Threads {
    pub(crate) fn new(name: String, stack_size: Option<usize>) -> Self {
        Threads {
            name,
            stack_size,
            next_worker: AtomicUsize::new(0),
            handles: Mutex::new(Vec::new()),
        }
    }

    /// Starts a worker thread, named after the pool and numbered.
    pub(crate) fn spawn_worker(&self, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let index = self.next_worker.fetch_add(1, Ordering::Relaxed);
        self.spawn(format!("{}-{index}", self.name), body)
    }

    /// Starts the timer thread.
    pub(crate) fn spawn_timer(&self, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
        self.spawn(format!("{}-timer", self.name), body)
    }

    fn spawn(&self, name: String, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let mut builder = thread::Builder::new().name(name);
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        let handle = builder.spawn(body)?;
        let mut handles = lock(&self.handles);
        // Retired workers leave finished handles behind; reap them here, on the slow path.
        handles.retain(|handle| !handle.is_finished());
        handles.push(handle);
        Ok(())
    }

    /// Joins every thread started so far, except the calling one: a pool dropped by one
    /// of its own jobs cannot join the thread running it.
    pub(crate) fn join_all(&self) {
        let handles = std::mem::take(&mut *lock(&self.handles));
        let current = thread::current().id();
        for handle in handles {
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        }
    }
}
