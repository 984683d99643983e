use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::{CancellationToken, Job, JobContext};

/// What a [`KitJob`] does when it runs.
///
/// # Examples
///
/// ```
/// use brigade_core::testkit::{Behaviour, KitJob};
/// let job = KitJob::new(Behaviour::Return(3));
/// assert!(matches!(job.behaviour(), Behaviour::Return(3)));
/// ```
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Returns the value.
    Return(u64),
    /// Returns the error.
    Fail(String),
    /// Panics with the message.
    Panic(String),
    /// Sleeps (not cancellably), then returns 0.
    Sleep(Duration),
    /// Waits for its token to be cancelled, then returns the error `"cancelled"`.
    UntilCancelled,
    /// Waits for the gate to open (then returns 1) or its token to be cancelled (then
    /// returns the error `"cancelled"`).
    Gate(Gate),
    /// Fails with `"attempt N failed"` until attempt `n`, then returns the attempt number.
    FailUntilAttempt(u32),
}

/// A one-shot barrier jobs wait on; tests open it to let them finish.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let gate = brigade_core::testkit::Gate::new();
/// assert!(!gate.wait_timeout(Duration::from_millis(1)));
/// gate.open();
/// assert!(gate.wait_timeout(Duration::from_secs(1)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Gate {
    opened: CancellationToken,
}

impl Gate {
    /// A closed gate.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!brigade_core::testkit::Gate::new().is_open());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens the gate for every waiter, now and later.
    ///
    /// # Examples
    ///
    /// ```
    /// let gate = brigade_core::testkit::Gate::new();
    /// gate.open();
    /// assert!(gate.is_open());
    /// ```
    pub fn open(&self) {
        self.opened.cancel();
    }

    /// Whether the gate is open.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!brigade_core::testkit::Gate::new().is_open());
    /// ```
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.opened.is_cancelled()
    }

    /// Blocks until the gate opens or `timeout` passes; reports whether it opened.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert!(!brigade_core::testkit::Gate::new().wait_timeout(Duration::ZERO));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.opened.wait_timeout(timeout)
    }
}

/// Counts how many runs of the probed jobs started, how many run now, and the most that
/// ever ran at once.
///
/// # Examples
///
/// ```
/// use brigade_core::testkit::{Behaviour, KitJob, Probe};
/// use brigade_core::{Job, JobContext};
///
/// let probe = Probe::new();
/// let mut job = KitJob::new(Behaviour::Return(1)).probed(&probe);
/// job.run(&JobContext::detached()).unwrap();
/// assert_eq!((probe.started(), probe.running(), probe.max_running()), (1, 0, 1));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Probe {
    state: Arc<ProbeState>,
}

#[derive(Debug, Default)]
struct ProbeState {
    started: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Probe {
    /// A probe that has seen nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::testkit::Probe::new().started(), 0);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs started so far.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::testkit::Probe::new().started(), 0);
    /// ```
    #[must_use]
    pub fn started(&self) -> usize {
        self.state.started.load(Ordering::SeqCst)
    }

    /// Runs in progress now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::testkit::Probe::new().running(), 0);
    /// ```
    #[must_use]
    pub fn running(&self) -> usize {
        self.state.running.load(Ordering::SeqCst)
    }

    /// The most runs ever in progress at once.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::testkit::Probe::new().max_running(), 0);
    /// ```
    #[must_use]
    pub fn max_running(&self) -> usize {
        self.state.max_running.load(Ordering::SeqCst)
    }

    fn enter(&self) -> ProbeGuard {
        self.state.started.fetch_add(1, Ordering::SeqCst);
        let now = self.state.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.state.max_running.fetch_max(now, Ordering::SeqCst);
        ProbeGuard {
            state: Arc::clone(&self.state),
        }
    }
}

struct ProbeGuard {
    state: Arc<ProbeState>,
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        self.state.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The job the conformance kit submits: a [`Behaviour`] and an optional [`Probe`].
///
/// It is a [`Job`] for thread backends; async backends wrap it and call
/// [`run_async`](Self::run_async) with their runtime's sleep, so every behaviour is written
/// once.
///
/// # Examples
///
/// ```
/// use brigade_core::testkit::{Behaviour, KitJob};
/// use brigade_core::{Job, JobContext};
///
/// let mut job = KitJob::new(Behaviour::FailUntilAttempt(2));
/// assert!(job.run(&JobContext::detached()).is_err());
/// assert_eq!(job.run(&JobContext::detached().with_attempt(2)), Ok(2));
/// ```
#[derive(Clone, Debug)]
pub struct KitJob {
    behaviour: Behaviour,
    probe: Option<Probe>,
}

impl KitJob {
    /// A job with no probe.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = brigade_core::testkit::KitJob::new(brigade_core::testkit::Behaviour::Return(1));
    /// # let _ = job;
    /// ```
    #[must_use]
    pub fn new(behaviour: Behaviour) -> Self {
        KitJob {
            behaviour,
            probe: None,
        }
    }

    /// Reports this job's runs to `probe`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::testkit::{Behaviour, KitJob, Probe};
    /// let job = KitJob::new(Behaviour::Return(1)).probed(&Probe::new());
    /// # let _ = job;
    /// ```
    #[must_use]
    pub fn probed(mut self, probe: &Probe) -> Self {
        self.probe = Some(probe.clone());
        self
    }

    /// What the job does.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::testkit::{Behaviour, KitJob};
    /// assert!(matches!(KitJob::new(Behaviour::UntilCancelled).behaviour(), Behaviour::UntilCancelled));
    /// ```
    #[must_use]
    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// The value a `Return` job returns, to recognise a job handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::testkit::{Behaviour, KitJob};
    /// assert_eq!(KitJob::new(Behaviour::Return(4)).value(), Some(4));
    /// assert_eq!(KitJob::new(Behaviour::UntilCancelled).value(), None);
    /// ```
    #[must_use]
    pub fn value(&self) -> Option<u64> {
        match self.behaviour {
            Behaviour::Return(value) => Some(value),
            _ => None,
        }
    }

    /// Runs the behaviour in async code; `sleep` is the runtime's timer.
    ///
    /// # Errors
    ///
    /// As the behaviour says (`Fail`, `UntilCancelled`, a cancelled `Gate`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::future::Future;
    /// # use std::pin::pin;
    /// # use std::task::{Context, Poll, Waker};
    /// use brigade_core::JobContext;
    /// use brigade_core::testkit::{Behaviour, KitJob};
    ///
    /// let mut job = KitJob::new(Behaviour::Return(5));
    /// let cx = JobContext::detached();
    /// let mut run = pin!(job.run_async(&cx, |_| std::future::ready(())));
    /// let poll = run.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    /// assert_eq!(poll, Poll::Ready(Ok(5)));
    /// ```
    pub async fn run_async<F, S>(&mut self, cx: &JobContext, sleep: F) -> Result<u64, String>
    where
        F: FnOnce(Duration) -> S,
        S: Future<Output = ()>,
    {
        let _running = self.probe.as_ref().map(Probe::enter);
        match &self.behaviour {
            Behaviour::Sleep(duration) => {
                sleep(*duration).await;
                Ok(0)
            }
            Behaviour::UntilCancelled => {
                cx.token().cancelled().await;
                Err("cancelled".to_owned())
            }
            Behaviour::Gate(gate) => {
                let opened = FirstOf {
                    gate: gate.opened.cancelled(),
                    cancelled: cx.token().cancelled(),
                }
                .await;
                if opened {
                    Ok(1)
                } else {
                    Err("cancelled".to_owned())
                }
            }
            other => immediate(other, cx),
        }
    }
}

fn immediate(behaviour: &Behaviour, cx: &JobContext) -> Result<u64, String> {
    match behaviour {
        Behaviour::Return(value) => Ok(*value),
        Behaviour::Fail(error) => Err(error.clone()),
        Behaviour::Panic(message) => panic!("{message}"),
        Behaviour::FailUntilAttempt(n) if cx.attempt() < *n => {
            Err(format!("attempt {} failed", cx.attempt()))
        }
        Behaviour::FailUntilAttempt(_) => Ok(u64::from(cx.attempt())),
        Behaviour::Sleep(_) | Behaviour::UntilCancelled | Behaviour::Gate(_) => {
            unreachable!("waiting behaviours are run by the caller")
        }
    }
}

impl Job for KitJob {
    type Output = u64;
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<u64, String> {
        let _running = self.probe.as_ref().map(Probe::enter);
        match &self.behaviour {
            Behaviour::Sleep(duration) => {
                std::thread::sleep(*duration);
                Ok(0)
            }
            Behaviour::UntilCancelled => {
                cx.token().wait_timeout(Duration::MAX);
                Err("cancelled".to_owned())
            }
            Behaviour::Gate(gate) => loop {
                if gate.is_open() {
                    return Ok(1);
                }
                if cx.token().wait_timeout(Duration::from_millis(2)) {
                    return Err("cancelled".to_owned());
                }
            },
            other => immediate(other, cx),
        }
    }
}

/// Resolves when the gate opens (`true`) or the job's token is cancelled (`false`).
struct FirstOf<'a> {
    gate: crate::Cancelled<'a>,
    cancelled: crate::Cancelled<'a>,
}

impl Future for FirstOf<'_> {
    type Output = bool;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<bool> {
        use std::task::Poll;
        if std::pin::Pin::new(&mut self.gate).poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        if std::pin::Pin::new(&mut self.cancelled).poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        Poll::Pending
    }
}
