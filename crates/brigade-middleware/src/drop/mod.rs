//! What a pool does with a job submitted to a full queue.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brigade_core::Rejection;
use brigade_core::hooks::{Admission, DropReason, Middleware, QueueState};

/// The choice when a job arrives at a full queue.
///
/// # Examples
///
/// ```
/// assert_eq!(brigade_middleware::Overflow::default(), brigade_middleware::Overflow::Block);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Wait for room (`submit`), or refuse as full (`try_submit`): plain backpressure.
    #[default]
    Block,
    /// Refuse the job with a reason; it comes back to the caller in
    /// [`SubmitError::Rejected`](brigade_core::SubmitError::Rejected).
    Reject,
    /// Accept and drop the incoming job (the seeds' `select { case out <- item: default: }`).
    DropNewest,
    /// Drop the oldest queued job to make room for the incoming one (fresh data wins).
    DropOldest,
}

type OnDrop<J> = dyn Fn(J, DropReason) + Send + Sync;

/// A backpressure policy for a full queue: block, reject, drop the newest or drop the
/// oldest job.
///
/// A dropped job is never lost silently: the backend counts it in
/// [`Stats::dropped`](brigade_core::Stats::dropped) and traces it, and this layer hands it
/// to its `on_drop` callback (and counts it too, per reason).
///
/// Add it first: admission stops at the first layer that does not accept, and a job
/// refused by a later layer should not have cost a queued job its place.
///
/// # Examples
///
/// ```
/// use brigade_core::hooks::{Admission, DropReason, Middleware, QueueState};
/// use brigade_middleware::{Backpressure, Overflow};
///
/// let policy = Backpressure::new(Overflow::DropNewest)
///     .on_drop(|item: String, reason| println!("dropping item {item} due to backpressure ({reason:?})"));
/// let full = QueueState { len: 100, capacity: 100 };
/// assert_eq!(Middleware::<String, ()>::admit(&policy, &"a".into(), full), Admission::DropNewest);
/// Middleware::<String, ()>::dropped(&policy, "a".into(), DropReason::Newest);
/// assert_eq!(policy.dropped_newest(), 1);
/// ```
pub struct Backpressure<J> {
    overflow: Overflow,
    on_drop: Option<Arc<OnDrop<J>>>,
    dropped_newest: AtomicU64,
    evicted: AtomicU64,
}

impl<J: 'static> Backpressure<J> {
    /// A policy that applies `overflow` when the queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Backpressure, Overflow};
    /// let policy = Backpressure::<u32>::new(Overflow::Reject);
    /// assert_eq!(policy.overflow(), Overflow::Reject);
    /// ```
    #[must_use]
    pub fn new(overflow: Overflow) -> Self {
        Backpressure {
            overflow,
            on_drop: None,
            dropped_newest: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// Calls `on_drop` with every job this policy drops, and why.
    ///
    /// The callback runs on the submitting thread (drop newest, evict oldest), so keep it
    /// short: log, count, or forward to a channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use brigade_middleware::{Backpressure, Overflow};
    /// let (tx, rx) = mpsc::channel();
    /// let policy = Backpressure::new(Overflow::DropOldest)
    ///     .on_drop(move |job: u32, _| { let _ = tx.send(job); });
    /// # let _ = (policy, rx);
    /// ```
    #[must_use]
    pub fn on_drop(mut self, on_drop: impl Fn(J, DropReason) + Send + Sync + 'static) -> Self {
        self.on_drop = Some(Arc::new(on_drop));
        self
    }

    /// The choice made when the queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Backpressure, Overflow};
    /// assert_eq!(Backpressure::<()>::new(Overflow::Block).overflow(), Overflow::Block);
    /// ```
    #[must_use]
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// Incoming jobs dropped so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Backpressure, Overflow};
    /// assert_eq!(Backpressure::<()>::new(Overflow::DropNewest).dropped_newest(), 0);
    /// ```
    #[must_use]
    pub fn dropped_newest(&self) -> u64 {
        self.dropped_newest.load(Ordering::Relaxed)
    }

    /// Queued jobs evicted so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Backpressure, Overflow};
    /// assert_eq!(Backpressure::<()>::new(Overflow::DropOldest).evicted(), 0);
    /// ```
    #[must_use]
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// The admission decision for a job arriving at `queue`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Admission, QueueState};
    /// use brigade_middleware::{Backpressure, Overflow};
    /// let policy = Backpressure::<()>::new(Overflow::DropOldest);
    /// assert_eq!(policy.decide(QueueState { len: 1, capacity: 2 }), Admission::Accept);
    /// assert_eq!(policy.decide(QueueState { len: 2, capacity: 2 }), Admission::EvictOldest);
    /// ```
    pub fn decide(&self, queue: QueueState) -> Admission {
        if !queue.is_full() {
            return Admission::Accept;
        }
        match self.overflow {
            Overflow::Block => Admission::Accept,
            Overflow::Reject => Admission::Reject(Rejection::new(format!(
                "queue full ({} of {} jobs)",
                queue.len, queue.capacity
            ))),
            Overflow::DropNewest => Admission::DropNewest,
            Overflow::DropOldest => Admission::EvictOldest,
        }
    }
}

impl<J: Send + 'static, E> Middleware<J, E> for Backpressure<J> {
    fn name(&self) -> &'static str {
        "backpressure"
    }

    /// No `after_run`: it never reads when a run started.
    fn times_runs(&self) -> bool {
        false
    }

    /// No `after_run`: successful runs need not come here.
    fn sees_successes(&self) -> bool {
        false
    }

    /// No `before_start`: starts need not come here.
    fn sees_starts(&self) -> bool {
        false
    }

    /// No `deadline`: runs start without asking it for one.
    fn sets_deadlines(&self) -> bool {
        false
    }

    /// A policy that waits for room accepts every job: a full queue makes the submit wait
    /// anyway, so it need not see submits.
    fn sees_submits(&self) -> bool {
        !matches!(self.overflow, Overflow::Block)
    }

    fn admit(&self, _job: &J, queue: QueueState) -> Admission {
        self.decide(queue)
    }

    fn dropped(&self, job: J, reason: DropReason) {
        match reason {
            DropReason::Evicted => &self.evicted,
            // Refused on arrival (and any reason added later, so no drop goes uncounted).
            _ => &self.dropped_newest,
        }
        .fetch_add(1, Ordering::Relaxed);
        if let Some(on_drop) = &self.on_drop {
            on_drop(job, reason);
        }
    }
}

impl<J> fmt::Debug for Backpressure<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backpressure")
            .field("overflow", &self.overflow)
            .field("on_drop", &self.on_drop.is_some())
            .field("dropped_newest", &self.dropped_newest)
            .field("evicted", &self.evicted)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brigade_core::hooks::Layers;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Offer,
        Take,
    }

    fn overflow() -> impl Strategy<Value = Overflow> {
        prop_oneof![
            Just(Overflow::Block),
            Just(Overflow::Reject),
            Just(Overflow::DropNewest),
            Just(Overflow::DropOldest),
        ]
    }

    proptest! {
        /// A tiny queue driven the way a backend drives it (`try_submit` semantics for
        /// `Block`): every offered job is admitted, rejected or dropped, and every
        /// admitted job is taken, evicted or still queued. No job is lost or duplicated.
        #[test]
        fn drop_policies_conserve_jobs(
            overflow in overflow(),
            capacity in 1usize..5,
            ops in proptest::collection::vec(prop_oneof![3 => Just(Op::Offer), 2 => Just(Op::Take)], 0..200),
        ) {
            let dropped = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&dropped);
            let layers = Layers::<u32, ()>::new().with(
                Backpressure::new(overflow).on_drop(move |job, reason| sink.lock().unwrap().push((job, reason))),
            );
            let mut queue = VecDeque::new();
            let (mut offered, mut admitted, mut rejected, mut taken) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Offer => {
                        let job = next;
                        next += 1;
                        offered.push(job);
                        let state = QueueState { len: queue.len(), capacity };
                        match layers.admit(&job, state) {
                            (Admission::Accept, _) if state.is_full() => rejected.push(job), // try_submit: Full
                            (Admission::Accept, _) => { admitted.push(job); queue.push_back(job); }
                            (Admission::Reject(_), _) => rejected.push(job),
                            (Admission::DropNewest, Some(layer)) => {
                                admitted.push(job);
                                layers.dropped(layer, job, DropReason::Newest);
                            }
                            (Admission::EvictOldest, Some(layer)) => {
                                let oldest = queue.pop_front().expect("a full queue has an oldest job");
                                layers.dropped(layer, oldest, DropReason::Evicted);
                                admitted.push(job);
                                queue.push_back(job);
                            }
                            (decision, layer) => prop_assert!(false, "unexpected {decision:?} from {layer:?}"),
                        }
                        prop_assert!(queue.len() <= capacity);
                    }
                    Op::Take => taken.extend(queue.pop_front()),
                }
            }
            let dropped = dropped.lock().unwrap();
            let dropped_newest: Vec<_> = dropped.iter().filter(|(_, r)| *r == DropReason::Newest).map(|(j, _)| *j).collect();
            let evicted: Vec<_> = dropped.iter().filter(|(_, r)| *r == DropReason::Evicted).map(|(j, _)| *j).collect();

            // offered = admitted (queued, then run or evicted) + rejected + dropped newest
            let admitted_to_queue = admitted.len() - dropped_newest.len();
            prop_assert_eq!(offered.len(), admitted_to_queue + rejected.len() + dropped_newest.len());
            prop_assert_eq!(admitted_to_queue, taken.len() + evicted.len() + queue.len());

            let mut every: Vec<u32> = taken.iter().chain(&evicted).chain(&queue).chain(&rejected).chain(&dropped_newest).copied().collect();
            every.sort_unstable();
            prop_assert_eq!(every, offered.clone(), "each job in exactly one place");

            match overflow {
                Overflow::Block | Overflow::Reject => prop_assert!(dropped.is_empty()),
                Overflow::DropNewest => prop_assert!(evicted.is_empty()),
                Overflow::DropOldest => prop_assert!(dropped_newest.is_empty() && rejected.is_empty()),
            }
        }
    }

    #[test]
    fn reject_names_the_queue_state() {
        let policy = Backpressure::<()>::new(Overflow::Reject);
        match policy.decide(QueueState {
            len: 8,
            capacity: 8,
        }) {
            Admission::Reject(reason) => assert_eq!(reason.reason(), "queue full (8 of 8 jobs)"),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn only_a_policy_that_may_refuse_or_drop_sees_submits() {
        let sees =
            |overflow| Middleware::<(), String>::sees_submits(&Backpressure::<()>::new(overflow));
        assert!(!sees(Overflow::Block), "a full queue waits anyway");
        assert!(sees(Overflow::Reject));
        assert!(sees(Overflow::DropNewest));
        assert!(sees(Overflow::DropOldest));
    }
}
