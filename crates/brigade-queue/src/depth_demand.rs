//! What a batch adds to each depth-capped queue, for the stores' cap checks.

use std::collections::{BTreeMap, BTreeSet};

use crate::NewJob;

/// What a batch would add to one queue whose depth cap applies to some of its jobs: the
/// figures a store's cap check compares with the queue's live jobs, so that every store
/// counts a batch the same way.
///
/// A job without a unique key adds one job. A job with one adds a job only if no live job
/// holds its key, and a key the batch carries twice adds at most one: so the check counts
/// the batch's distinct keys and asks the store how many of them are already taken.
///
/// # Examples
///
/// ```
/// use brigade_queue::{DepthDemand, EnqueueOptions, NewJob};
/// use serde_json::json;
///
/// let keyed = |key: &str| {
///     NewJob::new("mail", json!(key))
///         .with_options(EnqueueOptions::new().unique_key(key))
///         .with_max_depth(Some(5))
/// };
/// let plain = NewJob::new("mail", json!(0)).with_max_depth(Some(3));
/// let batch = [keyed("a"), keyed("b"), keyed("a"), plain];
/// let demands = DepthDemand::of(&batch);
/// let mail = &demands["mail"];
/// assert_eq!((mail.cap, mail.unkeyed, mail.keys.len()), (3, 1, 2));
/// assert_eq!(mail.adds(1), 2, "one of the two keys is live already");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepthDemand<'a> {
    /// The lowest cap among the batch's capped jobs of the queue.
    pub cap: u64,
    /// How many of them have no unique key: each adds a job.
    pub unkeyed: u64,
    /// The distinct unique keys of the others.
    pub keys: BTreeSet<&'a str>,
}

impl<'a> DepthDemand<'a> {
    /// The demand of `jobs` on each queue a cap applies to, by queue name (sorted, so that
    /// a store locking queues in this order locks them in the same order for every batch).
    /// Jobs without a cap count toward no queue's demand.
    ///
    /// # Examples
    ///
    /// See [`DepthDemand`].
    #[must_use]
    pub fn of(jobs: &'a [NewJob]) -> BTreeMap<&'a str, DepthDemand<'a>> {
        let mut demands: BTreeMap<&str, DepthDemand<'_>> = BTreeMap::new();
        for job in jobs {
            let Some(cap) = job.max_depth() else {
                continue;
            };
            let demand = demands.entry(job.queue()).or_insert(DepthDemand {
                cap,
                unkeyed: 0,
                keys: BTreeSet::new(),
            });
            demand.cap = demand.cap.min(cap);
            match job.options().unique_key_value() {
                Some(key) => {
                    demand.keys.insert(key);
                }
                None => demand.unkeyed += 1,
            }
        }
        demands
    }

    /// How many jobs the batch adds when live jobs already hold `taken` of its keys.
    ///
    /// # Examples
    ///
    /// See [`DepthDemand`].
    #[must_use]
    pub fn adds(&self, taken: u64) -> u64 {
        let keys = u64::try_from(self.keys.len()).unwrap_or(u64::MAX);
        self.unkeyed.saturating_add(keys.saturating_sub(taken))
    }

    /// Whether the batch fits under the cap beside `live` live jobs of which `taken` hold
    /// its keys.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_queue::{DepthDemand, NewJob};
    /// use serde_json::json;
    ///
    /// let batch = [NewJob::new("q", json!(1)).with_max_depth(Some(2))];
    /// let demand = &DepthDemand::of(&batch)["q"];
    /// assert!(demand.fits(1, 0));
    /// assert!(!demand.fits(2, 0));
    /// ```
    #[must_use]
    pub fn fits(&self, live: u64, taken: u64) -> bool {
        live.saturating_add(self.adds(taken)) <= self.cap
    }
}
