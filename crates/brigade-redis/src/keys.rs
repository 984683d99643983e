//! The names of every key the store writes: one prefix per store, and each queue's keys
//! hash-tagged with the queue's name so that a queue lives in one slot.

use brigade_queue::StoreError;

/// The key names of one store (one prefix).
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`, which must not hold `{` or `}` (they would move the hash tag).
    pub(crate) fn new(prefix: &str) -> Result<Self, StoreError> {
        if prefix.is_empty() || prefix.contains(['{', '}']) {
            return Err(StoreError::invalid(format!(
                "a key prefix is a non-empty name without braces, not {prefix:?}"
            )));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:{<queue>}:`, the start of every key of `queue`; the scripts append
    /// `job:<id>`, `ready:<priority>`, `returned:<priority>`, `levels`, `delayed`, `leases`,
    /// `dead`, `finished`, `unique`, `counts` and `tokens`.
    pub(crate) fn queue_base(&self, queue: &str) -> Result<String, StoreError> {
        check_name("queue", queue)?;
        Ok(format!("{}:{{{queue}}}:", self.prefix))
    }

    /// The job id counter (slot `{ids}`).
    pub(crate) fn id_counter(&self) -> String {
        format!("{}:{{ids}}:next", self.prefix)
    }

    /// The hash from job id to its queue (slot `{ids}`).
    pub(crate) fn id_queues(&self) -> String {
        format!("{}:{{ids}}:queue", self.prefix)
    }

    /// Where retention's sweep of unused ids stands (slot `{ids}`): the id counter as read
    /// by the pass that finished the last sweep (`below`), when (`at`, server clock, µs),
    /// and the `HSCAN` cursor of the sweep under way.
    pub(crate) fn id_sweep(&self) -> String {
        format!("{}:{{ids}}:sweep", self.prefix)
    }

    /// The pub/sub channel of queue wake-ups: queue names, published when a job becomes
    /// claimable.
    pub(crate) fn jobs_channel(&self) -> String {
        format!("{}:wakeups", self.prefix)
    }

    /// The pub/sub channel of unit releases: global concurrency limit keys, published
    /// when a run gives units back.
    pub(crate) fn units_channel(&self) -> String {
        format!("{}:units", self.prefix)
    }

    /// The set of queue names, for retention across queues.
    pub(crate) fn queues(&self) -> String {
        format!("{}:queues", self.prefix)
    }

    /// The theoretical arrival time of the global rate limit `key`.
    pub(crate) fn rate(&self, key: &str) -> Result<String, StoreError> {
        check_name("rate limit", key)?;
        Ok(format!("{}:{{rate:{key}}}", self.prefix))
    }

    /// The holders (sorted set) and their weights (hash) of the global concurrency
    /// limit `key`.
    pub(crate) fn units(&self, key: &str) -> Result<(String, String), StoreError> {
        check_name("concurrency limit", key)?;
        Ok((
            format!("{}:{{units:{key}}}:holders", self.prefix),
            format!("{}:{{units:{key}}}:weights", self.prefix),
        ))
    }
}

/// What a queue or limit name must be: it becomes the keys' hash tag.
pub(crate) const NAME_RULE: &str = "non-empty and without braces (it is the keys' hash tag)";

/// Whether `name` can be a hash tag.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['{', '}'])
}

fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if !is_valid_name(name) {
        return Err(StoreError::invalid(format!(
            "a {what} name is {NAME_RULE}, not {name:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn queue_keys_share_the_queue_hash_tag() {
        let keys = Keys::new("app").expect("prefix");
        assert_eq!(keys.queue_base("emails").expect("name"), "app:{emails}:");
        assert_eq!(keys.id_counter(), "app:{ids}:next");
        assert_eq!(keys.rate("smtp").expect("name"), "app:{rate:smtp}");
    }

    #[test]
    fn braces_and_empty_names_are_refused() {
        assert!(Keys::new("a{b").is_err());
        assert!(Keys::new("").is_err());
        let keys = Keys::new("app").expect("prefix");
        assert!(keys.queue_base("").is_err());
        assert!(keys.queue_base("a}b").is_err());
        assert!(keys.units("{x").is_err());
    }
}
