use std::collections::BTreeMap;
use std::time::Instant;

/// Entries waiting for a time (a retry's backoff, a start deferred by a rate limit), served
/// earliest first and, at equal times, in the order they came. The runtime-free half of a
/// backend's timer: the backend only sleeps until [`next_at`](Self::next_at).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::backend::DelayQueue;
///
/// let now = Instant::now();
/// let mut queue = DelayQueue::new();
/// assert!(queue.push(now + Duration::from_secs(2), "later"));
/// assert!(queue.push(now + Duration::from_secs(1), "sooner"), "a new earliest entry");
/// assert!(!queue.push(now + Duration::from_secs(1), "sooner, second"));
/// assert_eq!(queue.pop_due(now), None);
/// let then = now + Duration::from_secs(1);
/// assert_eq!(queue.pop_due(then), Some("sooner"));
/// assert_eq!(queue.pop_due(then), Some("sooner, second"));
/// assert_eq!(queue.next_at(), Some(now + Duration::from_secs(2)));
/// ```
#[derive(Debug)]
pub struct DelayQueue<T> {
    entries: BTreeMap<(Instant, u64), T>,
    next_seq: u64,
}

impl<T> Default for DelayQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> DelayQueue<T> {
    /// An empty queue.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::backend::DelayQueue::<u8>::new().is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        DelayQueue {
            entries: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Adds `item`, due at `at`; returns whether it is now the earliest entry (the timer
    /// must wake up sooner than it planned).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut queue = brigade_core::backend::DelayQueue::new();
    /// assert!(queue.push(std::time::Instant::now(), ()));
    /// ```
    pub fn push(&mut self, at: Instant, item: T) -> bool {
        let seq = self.next_seq;
        self.next_seq += 1;
        let earliest = self.next_at().is_none_or(|earliest| at < earliest);
        self.entries.insert((at, seq), item);
        earliest
    }

    /// When the earliest entry falls due.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::backend::DelayQueue::<()>::new().next_at(), None);
    /// ```
    #[must_use]
    pub fn next_at(&self) -> Option<Instant> {
        self.entries.keys().next().map(|&(at, _)| at)
    }

    /// The earliest entry, if it is due at `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// let now = std::time::Instant::now();
    /// let mut queue = brigade_core::backend::DelayQueue::new();
    /// queue.push(now, 'x');
    /// assert_eq!(queue.pop_due(now), Some('x'));
    /// ```
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let entry = self.entries.first_entry()?;
        (entry.key().0 <= now).then(|| entry.remove())
    }

    /// The entries `pick` picks, earliest first, taken out of the queue (jobs cancelled
    /// while they waited).
    ///
    /// # Examples
    ///
    /// ```
    /// let now = std::time::Instant::now();
    /// let mut queue = brigade_core::backend::DelayQueue::new();
    /// for n in [1, 2, 3, 4] {
    ///     queue.push(now, n);
    /// }
    /// assert_eq!(queue.take_where(|n| n % 2 == 0), [2, 4]);
    /// assert_eq!(queue.take_all(), [1, 3]);
    /// ```
    #[must_use]
    pub fn take_where(&mut self, mut pick: impl FnMut(&T) -> bool) -> Vec<T> {
        let picked: Vec<(Instant, u64)> = self
            .entries
            .iter()
            .filter(|(_, item)| pick(item))
            .map(|(&key, _)| key)
            .collect();
        picked
            .into_iter()
            .filter_map(|key| self.entries.remove(&key))
            .collect()
    }

    /// Every entry, earliest first.
    ///
    /// # Examples
    ///
    /// ```
    /// let now = std::time::Instant::now();
    /// let mut queue = brigade_core::backend::DelayQueue::new();
    /// queue.push(now + std::time::Duration::from_secs(1), 2);
    /// queue.push(now, 1);
    /// assert_eq!(queue.take_all(), [1, 2]);
    /// ```
    #[must_use]
    pub fn take_all(&mut self) -> Vec<T> {
        std::mem::take(&mut self.entries).into_values().collect()
    }

    /// How many entries wait.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::backend::DelayQueue::<()>::new().len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry waits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::backend::DelayQueue::<()>::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
