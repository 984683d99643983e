//! The wake-ups a store hands the workers of one process: one per queue, fired when a job
//! may have become claimable there, and one per global concurrency limit, fired when
//! units of it came back. Every store keeps one [`Wakeups`] and fires it from whatever
//! tells it (its own writes, a notification channel); workers poll behind it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// A store's wake-ups in this process, by queue and by global concurrency limit; what
/// [`Store::wakeup`](crate::Store::wakeup) and
/// [`Store::units_wakeup`](crate::Store::units_wakeup) hand out.
///
/// A queue's wake-up reaches every worker waiting on that queue: each looks for jobs. A
/// limit's wake-up reaches one waiter per release, first come first served: a release
/// frees units for about one job, and waking every waiter would send them all to the
/// store for it.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let wakeups = brigade_queue::Wakeups::default();
/// let smtp = wakeups.units("smtp");
/// let woken = smtp.notified();
/// wakeups.wake_units("smtp");
/// woken.await; // a run elsewhere gave units of "smtp" back
/// # });
/// ```
#[derive(Debug, Default)]
pub struct Wakeups {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
    limits: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakeups {
    /// The wake-up of `queue`'s workers.
    ///
    /// # Examples
    ///
    /// ```
    /// let wakeups = brigade_queue::Wakeups::default();
    /// assert!(std::sync::Arc::ptr_eq(&wakeups.queue("mail"), &wakeups.queue("mail")));
    /// ```
    #[must_use]
    pub fn queue(&self, queue: &str) -> Arc<Notify> {
        notify_of(&self.queues, queue)
    }

    /// Wakes every worker of this process waiting on `queue`.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let wakeups = brigade_queue::Wakeups::default();
    /// let mail = wakeups.queue("mail");
    /// let woken = mail.notified();
    /// tokio::pin!(woken);
    /// woken.as_mut().enable();
    /// wakeups.wake_queue("mail");
    /// woken.await;
    /// # });
    /// ```
    pub fn wake_queue(&self, queue: &str) {
        if let Some(notify) = lock(&self.queues).get(queue) {
            notify.notify_waiters();
        }
    }

    /// The wake-up of the runs of this process waiting for units of global concurrency
    /// limit `limit`.
    ///
    /// # Examples
    ///
    /// ```
    /// let wakeups = brigade_queue::Wakeups::default();
    /// assert!(std::sync::Arc::ptr_eq(&wakeups.units("gpu"), &wakeups.units("gpu")));
    /// ```
    #[must_use]
    pub fn units(&self, limit: &str) -> Arc<Notify> {
        notify_of(&self.limits, limit)
    }

    /// Units of `limit` came back: wakes the run that has waited longest for them (or, if
    /// none waits, the next one to wait).
    ///
    /// # Examples
    ///
    /// See [`Wakeups`].
    pub fn wake_units(&self, limit: &str) {
        if let Some(notify) = lock(&self.limits).get(limit) {
            notify.notify_one();
        }
    }

    /// Wakes every waiter, of every queue and every limit: after a notification channel
    /// was down, whatever it carried meanwhile is lost, so everyone looks once.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let wakeups = brigade_queue::Wakeups::default();
    /// let gpu = wakeups.units("gpu");
    /// let woken = gpu.notified();
    /// tokio::pin!(woken);
    /// woken.as_mut().enable();
    /// wakeups.wake_all();
    /// woken.await;
    /// # });
    /// ```
    pub fn wake_all(&self) {
        for notify in lock(&self.queues).values() {
            notify.notify_waiters();
        }
        for notify in lock(&self.limits).values() {
            notify.notify_waiters();
        }
    }
}

/// The wake-up under `name`, made on first use. A run waiting for units asks once per
/// job: a name already known costs no allocation.
fn notify_of(map: &Mutex<HashMap<String, Arc<Notify>>>, name: &str) -> Arc<Notify> {
    let mut map = lock(map);
    if let Some(notify) = map.get(name) {
        return Arc::clone(notify);
    }
    Arc::clone(map.entry(name.to_owned()).or_default())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every operation on the maps is one insert or one read: a panic elsewhere while one
    // was held leaves it consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_release_wakes_one_waiter_in_the_order_they_came() {
        let wakeups = Wakeups::default();
        let units = wakeups.units("smtp");
        let first = units.notified();
        let second = units.notified();
        tokio::pin!(first, second);
        first.as_mut().enable();
        second.as_mut().enable();
        wakeups.wake_units("smtp");
        first.await;
        let still_waiting = tokio::time::timeout(Duration::from_millis(50), second).await;
        assert!(still_waiting.is_err(), "one release woke two waiters");
    }

    #[test]
    fn waking_what_nobody_asked_for_does_nothing() {
        let wakeups = Wakeups::default();
        wakeups.wake_queue("mail");
        wakeups.wake_units("smtp");
        wakeups.wake_all();
    }
}
