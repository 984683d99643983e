//! Which global concurrency limits each run holds units of, so a heartbeat that renews a
//! run's lease renews its units too (as the PostgreSQL store's heartbeat does).
//!
//! The units themselves live in Redis (a sorted set of holders scored by lease expiry, and
//! a hash of their weights, per limit); this index only says which of those sets to touch.
//! It is kept by the process that took the units, which is the process that heartbeats the
//! run: a run whose process dies stops renewing, and its units come back when they expire.

use std::collections::HashMap;
use std::sync::Mutex;

use brigade_queue::Lease;

/// The limit keys each run (lease) holds units of.
#[derive(Debug, Default)]
pub(crate) struct UnitHolders {
    held: Mutex<HashMap<Lease, Vec<String>>>,
}

impl UnitHolders {
    /// The member naming `holder` in a limit's sorted set.
    pub(crate) fn member(holder: Lease) -> String {
        format!("{}:{}", holder.id.get(), holder.token.get())
    }

    pub(crate) fn took(&self, holder: Lease, limit: &str) {
        let mut held = self.lock();
        let limits = held.entry(holder).or_default();
        if !limits.iter().any(|known| known == limit) {
            limits.push(limit.to_owned());
        }
    }

    pub(crate) fn gave_back(&self, holder: Lease, limit: &str) {
        let mut held = self.lock();
        if let Some(limits) = held.get_mut(&holder) {
            limits.retain(|known| known != limit);
            if limits.is_empty() {
                held.remove(&holder);
            }
        }
    }

    /// Forgets every limit `holder` took units of: its run is over or its lease is lost,
    /// and its units come back when their lease runs out.
    pub(crate) fn forget(&self, holder: Lease) {
        self.lock().remove(&holder);
    }

    /// The limits `holder` holds units of.
    #[cfg(test)]
    pub(crate) fn held_by(&self, holder: Lease) -> Vec<String> {
        self.lock().get(&holder).cloned().unwrap_or_default()
    }

    /// The `holders` that hold units, by limit key.
    pub(crate) fn by_limit(&self, holders: &[Lease]) -> HashMap<String, Vec<Lease>> {
        let held = self.lock();
        let mut by_limit: HashMap<String, Vec<Lease>> = HashMap::new();
        for holder in holders {
            for limit in held.get(holder).into_iter().flatten() {
                by_limit.entry(limit.clone()).or_default().push(*holder);
            }
        }
        by_limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Lease, Vec<String>>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use brigade_queue::{DurableId, FencingToken, Lease};

    use super::UnitHolders;

    #[test]
    fn a_run_holds_each_limit_once_until_it_gives_it_back() {
        let units = UnitHolders::default();
        let run = Lease::new(DurableId::new(4), FencingToken::new(9));
        units.took(run, "smtp");
        units.took(run, "smtp");
        units.took(run, "gpu");
        assert_eq!(units.held_by(run), vec!["smtp", "gpu"]);
        units.gave_back(run, "smtp");
        units.gave_back(run, "gpu");
        assert!(units.held_by(run).is_empty());
        assert_eq!(UnitHolders::member(run), "4:9");
    }

    #[test]
    fn holders_group_by_limit_and_a_forgotten_run_holds_nothing() {
        let units = UnitHolders::default();
        let first = Lease::new(DurableId::new(1), FencingToken::new(1));
        let second = Lease::new(DurableId::new(2), FencingToken::new(2));
        units.took(first, "smtp");
        units.took(first, "gpu");
        units.took(second, "gpu");
        let by_limit = units.by_limit(&[first, second]);
        assert_eq!(by_limit["gpu"], vec![first, second]);
        assert_eq!(by_limit["smtp"], vec![first]);
        units.forget(first);
        assert!(units.held_by(first).is_empty());
        assert_eq!(units.held_by(second), vec!["gpu"]);
    }
}
