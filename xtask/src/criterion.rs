//! Medians criterion left behind, for the targets the runner cannot measure: a lone job's
//! round trip on an idle pool is a few microseconds, which only criterion's many iterations
//! resolve. Read from `target/criterion` (or `$CRITERION_HOME`), never produced here.

use std::path::PathBuf;
use std::time::Duration;

/// One function of a criterion bench, and the command that measures it.
pub(crate) struct Bench {
    pub(crate) group: &'static str,
    pub(crate) function: &'static str,
    pub(crate) command: &'static str,
}

/// `benches/benches/submit.rs`, brigade-thread's `submit_join` row: one job submitted and
/// joined at a time on a pool with nothing else to do, back to back, the round trip the
/// target describes. (`benches/benches/idle_round_trip.rs` measures the same after the
/// pool sat idle for a millisecond, which is the machine's wake-up of a parked thread.)
pub(crate) const IDLE_ROUND_TRIP: Bench = Bench {
    group: "submit_join",
    function: "brigade-thread",
    command: "cargo bench -p brigade-benches --bench submit -- submit_join",
};

impl Bench {
    /// `group/function`, as criterion names it.
    pub(crate) fn describe(&self) -> String {
        format!("{}/{}", self.group, self.function)
    }

    /// Criterion's median for this function and how old it is, if criterion ran it here.
    pub(crate) fn estimate(&self) -> Option<Estimate> {
        let path = criterion_home()
            .join(self.group)
            .join(self.function)
            .join("new")
            .join("estimates.json");
        let text = std::fs::read_to_string(&path).ok()?;
        let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
        let median_ns = estimates["median"]["point_estimate"].as_f64()?;
        let age = std::fs::metadata(&path)
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|written| written.elapsed().ok())
            .unwrap_or_default();
        Some(Estimate { median_ns, age })
    }
}

/// A criterion median and the time since criterion wrote it: an old one may predate the
/// code being benchmarked, so the report shows the age next to the value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Estimate {
    pub(crate) median_ns: f64,
    pub(crate) age: Duration,
}

/// Where criterion writes: `$CRITERION_HOME`, else `criterion` under the target directory.
fn criterion_home() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map_or_else(|| crate::target_dir().join("criterion"), PathBuf::from)
}

/// `90 s` as `1 min`, `3 h`, `2 d`: enough to tell a fresh estimate from a stale one.
pub(crate) fn age(age: Duration) -> String {
    let seconds = age.as_secs();
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{} min", seconds / 60),
        3_600..86_400 => format!("{} h", seconds / 3_600),
        _ => format!("{} d", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_coarsely() {
        assert_eq!(age(Duration::from_secs(5)), "5 s");
        assert_eq!(age(Duration::from_secs(90)), "1 min");
        assert_eq!(age(Duration::from_secs(7_300)), "2 h");
        assert_eq!(age(Duration::from_secs(200_000)), "2 d");
    }
}
