use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::dispatch::RunEnd;
use super::fence::{Fence, StopReason};
use crate::Lease;

/// One lease the worker holds, with the local instant by which it must be renewed.
#[derive(Debug)]
struct Held {
    /// The lease's end as this host can vouch for it: when the renewing request was sent,
    /// plus the lease. The store's own end is later (its clock started after the send).
    expires: Instant,
    fence: Arc<Fence>,
    /// The claim's attempt: which run this is.
    attempt: u32,
    /// How the run ended, once it has and its end is on its way to the store.
    end: Option<RunEnd>,
}

/// The leases a worker holds: what the heartbeat renews, what self-fencing watches and
/// what a shutdown gives back.
///
/// Keyed by the whole lease, not the job: a run fenced off by a lost lease can still be
/// going (its handler deaf to its token) when the rescued job comes back to this same
/// worker under a new lease, and both runs must be waited for and given back.
#[derive(Debug, Default)]
pub(crate) struct HeldLeases {
    leases: Mutex<HashMap<Lease, Held>>,
    emptied: Notify,
    /// No lease is renewed any more (see [`freeze`](Self::freeze)).
    frozen: AtomicBool,
}

impl HeldLeases {
    fn lock(&self) -> MutexGuard<'_, HashMap<Lease, Held>> {
        // A panic while holding this lock cannot leave the map half-changed (every change
        // is one insert, remove or field store), so a poisoned lock is still sound.
        self.leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn insert(&self, lease: Lease, expires: Instant, attempt: u32) -> Arc<Fence> {
        let fence = Arc::new(Fence::new());
        self.lock().insert(
            lease,
            Held {
                expires,
                fence: Arc::clone(&fence),
                attempt,
                end: None,
            },
        );
        fence
    }

    /// Notes how the run under `lease` ended, as its end leaves for the store.
    pub(crate) fn ended(&self, lease: Lease, end: &RunEnd) {
        if let Some(held) = self.lock().get_mut(&lease) {
            held.end = Some(end.clone());
        }
    }

    /// The attempt `lease` was claimed for and, if its run ended, how: what the worker
    /// still owes the store for it.
    pub(crate) fn owed(&self, lease: Lease) -> Option<(u32, Option<RunEnd>)> {
        self.lock()
            .get(&lease)
            .map(|held| (held.attempt, held.end.clone()))
    }

    pub(crate) fn remove(&self, lease: Lease) {
        let mut leases = self.lock();
        leases.remove(&lease);
        if leases.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    /// The local end of `lease`, if it is still held.
    pub(crate) fn expires(&self, lease: Lease) -> Option<Instant> {
        self.lock().get(&lease).map(|held| held.expires)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.lock().keys().copied().collect()
    }

    /// How many held leases have a run that started and has not ended.
    pub(crate) fn running(&self) -> usize {
        self.lock()
            .values()
            .filter(|held| held.fence.is_running())
            .count()
    }

    /// Renews no lease from now on, whatever heartbeat answers: each lease ends, as this
    /// host can vouch for it, no later than a lease after the last heartbeat sent, so
    /// whatever waits for a lease to end (an end retried while its lease lasts) ends.
    pub(crate) fn freeze(&self) {
        // Under the lock: a heartbeat's answer being applied is done before this returns.
        let _leases = self.lock();
        self.frozen.store(true, Ordering::Release);
    }

    /// Whether [`freeze`](Self::freeze) was called.
    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// After a heartbeat sent at `sent`: the leases in `renewed` now last until
    /// `sent + lease` (unless [frozen](Self::freeze)); every other lease in `asked` is lost
    /// and its run is stopped. Returns how many were lost.
    pub(crate) fn renewed(
        &self,
        asked: &[Lease],
        renewed: &[Lease],
        sent: Instant,
        lease: Duration,
    ) -> usize {
        let renewed: HashSet<&Lease> = renewed.iter().collect();
        let mut lost = 0;
        let mut leases = self.lock();
        let frozen = self.is_frozen();
        for lease_asked in asked {
            let Some(held) = leases.get_mut(lease_asked) else {
                continue;
            };
            if renewed.contains(lease_asked) {
                if !frozen {
                    held.expires = sent + lease;
                }
            } else if held.fence.reason() == StopReason::None {
                held.fence.stop(StopReason::LeaseLost);
                lost += 1;
            }
        }
        lost
    }

    /// Stops every run whose lease ends within `margin` of `now`: the worker fences itself
    /// off before another may claim the job. Returns how many it stopped.
    pub(crate) fn fence_expiring(&self, now: Instant, margin: Duration) -> usize {
        let mut fenced = 0;
        for held in self.lock().values() {
            if held.fence.reason() == StopReason::None && now + margin >= held.expires {
                held.fence.stop(StopReason::LeaseLost);
                fenced += 1;
            }
        }
        fenced
    }

    /// Stops every run that has not started yet (claimed jobs waiting at the global
    /// limits), for `reason`.
    pub(crate) fn stop_unstarted(&self, reason: StopReason) {
        for held in self.lock().values() {
            held.fence.stop_unstarted(reason);
        }
    }

    /// Stops every run, for `reason`.
    pub(crate) fn stop_all(&self, reason: StopReason) {
        for held in self.lock().values() {
            held.fence.stop(reason);
        }
    }

    /// Waits until no lease is held or `deadline` passes; true if none is held.
    pub(crate) async fn wait_empty(&self, deadline: Instant) -> bool {
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            if self.len() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline.into(), emptied)
                .await
                .is_err()
            {
                return self.len() == 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DurableId, FencingToken};

    fn lease(id: i64, token: i64) -> Lease {
        Lease {
            id: DurableId::new(id),
            token: FencingToken::new(token),
        }
    }

    #[test]
    fn a_job_claimed_again_keeps_its_earlier_run_held() {
        let held = HeldLeases::default();
        let now = Instant::now();
        let first = lease(7, 1);
        let again = lease(7, 2);
        let fence = held.insert(first, now, 1);
        assert!(fence.start(), "a handler deaf to its token keeps running");
        held.insert(again, now + Duration::from_secs(30), 2);
        held.remove(again);
        assert_eq!(held.leases(), vec![first], "the earlier run is still held");
        assert_eq!(held.running(), 1);
        assert_eq!(held.expires(first), Some(now));
        held.ended(first, &RunEnd::Succeeded);
        assert_eq!(held.owed(first), Some((1, Some(RunEnd::Succeeded))));
        held.remove(first);
        assert_eq!(held.owed(first), None);
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn a_heartbeat_renews_only_the_leases_it_got_back() {
        let held = HeldLeases::default();
        let now = Instant::now();
        let (kept, revoked, rescued) = (lease(1, 1), lease(2, 1), lease(3, 1));
        let kept_fence = held.insert(kept, now, 1);
        let revoked_fence = held.insert(revoked, now, 1);
        held.insert(lease(3, 2), now, 2);
        let asked = [kept, revoked, rescued];
        let lost = held.renewed(&asked, &[kept], now, Duration::from_secs(10));
        assert_eq!(
            lost, 1,
            "the job claimed again under token 2 is not this lease"
        );
        assert_eq!(held.expires(kept), Some(now + Duration::from_secs(10)));
        assert_eq!(kept_fence.reason(), StopReason::None);
        assert_eq!(revoked_fence.reason(), StopReason::LeaseLost);
    }

    #[test]
    fn a_frozen_lease_is_not_renewed_but_can_still_be_lost() {
        let held = HeldLeases::default();
        let now = Instant::now();
        let (kept, revoked) = (lease(1, 1), lease(2, 1));
        held.insert(kept, now, 1);
        let revoked_fence = held.insert(revoked, now, 1);
        held.freeze();
        assert!(held.is_frozen());
        let later = now + Duration::from_secs(5);
        let lost = held.renewed(&[kept, revoked], &[kept], later, Duration::from_secs(10));
        assert_eq!(lost, 1);
        assert_eq!(held.expires(kept), Some(now), "not renewed once frozen");
        assert_eq!(revoked_fence.reason(), StopReason::LeaseLost);
    }
}
