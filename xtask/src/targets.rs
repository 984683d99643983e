//! The performance targets of issue 9, checked against the medians: reported, never tests.

use serde::Serialize;

use crate::criterion::{self, Estimate};
use crate::summary::Summary;

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Target {
    pub(crate) name: String,
    /// What is compared, e.g. `brigade-thread / crossbeam-pool`.
    pub(crate) measure: String,
    pub(crate) goal: String,
    pub(crate) value: Option<f64>,
    pub(crate) met: Option<bool>,
    /// How far from the goal, in words: the headroom when met, the shortfall when missed.
    pub(crate) margin: String,
}

impl Target {
    pub(crate) fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "MET",
            Some(false) => "MISSED",
            None => "not measured",
        }
    }

    pub(crate) fn shown(&self) -> String {
        self.value
            .map_or_else(|| "–".to_owned(), crate::summary::format_value)
    }
}

pub(crate) enum Goal {
    AtMost(f64),
    /// Strictly under: "faster than" a peer is a time ratio below 1, not equal to it.
    Below(f64),
    AtLeast(f64),
}

pub(crate) fn target(name: &str, measure: &str, goal: Goal, value: Option<f64>) -> Target {
    let (goal_text, met, margin) = match goal {
        Goal::AtMost(limit) => (
            format!("≤ {limit}"),
            value.map(|v| v <= limit),
            value.map_or_else(String::new, |v| margin_at_most(v, limit)),
        ),
        Goal::Below(limit) => (
            format!("< {limit}"),
            value.map(|v| v < limit),
            value.map_or_else(String::new, |v| margin_below(v, limit)),
        ),
        Goal::AtLeast(limit) => (
            format!("≥ {limit}"),
            value.map(|v| v >= limit),
            value.map_or_else(String::new, |v| margin_at_least(v, limit)),
        ),
    };
    Target {
        name: name.to_owned(),
        measure: measure.to_owned(),
        goal: goal_text,
        value,
        met,
        margin,
    }
}

fn margin_at_most(value: f64, limit: f64) -> String {
    if limit <= 0.0 {
        return String::new();
    }
    if value <= limit {
        format!("{:.0}% under the limit", (1.0 - value / limit) * 100.0)
    } else {
        format!("{:.2}× the limit", value / limit)
    }
}

fn margin_below(value: f64, limit: f64) -> String {
    if value < limit {
        margin_at_most(value, limit)
    } else {
        format!("{:.2}× the limit", value / limit)
    }
}

fn margin_at_least(value: f64, limit: f64) -> String {
    if value >= limit {
        format!("{:.2}× the goal", value / limit)
    } else if value > 0.0 {
        format!("{:.1}× short", limit / value)
    } else {
        "far short".to_owned()
    }
}

pub(crate) fn ratio(top: Option<f64>, bottom: Option<f64>) -> Option<f64> {
    match (top, bottom) {
        (Some(top), Some(bottom)) if bottom > 0.0 => Some(top / bottom),
        _ => None,
    }
}

pub(crate) fn evaluate(summary: &Summary, idle_round_trip: Option<&Estimate>) -> Vec<Target> {
    let seconds = |workload: &str, subject: &str| summary.value(workload, subject, "seconds");
    let noop = |subject: &str| seconds("noop", subject);
    let middleware = |subject: &str| seconds("middleware", subject);
    let over = |layered: &str, bare: &str| {
        ratio(middleware(layered), middleware(bare)).map(|r| (r - 1.0) * 100.0)
    };
    let mut targets = vec![
        target(
            "thread noop within 1.5× the bare crossbeam pool",
            "time brigade-thread / crossbeam-pool",
            Goal::AtMost(1.5),
            ratio(noop("brigade-thread"), noop("crossbeam-pool")),
        ),
        target(
            "thread noop through map within 1.15× the bare crossbeam pool",
            "time brigade-thread/map / crossbeam-pool",
            Goal::AtMost(1.15),
            ratio(noop("brigade-thread/map"), noop("crossbeam-pool")),
        ),
        target(
            "thread noop through execute within 1.05× the bare crossbeam pool",
            "time brigade-thread/execute / crossbeam-pool",
            Goal::AtMost(1.05),
            ratio(noop("brigade-thread/execute"), noop("crossbeam-pool")),
        ),
    ];
    for peer in ["threadpool", "rayon-spawn"] {
        for workload in ["noop", "spin", "cpu"] {
            targets.push(target(
                &format!("thread {workload} faster than {peer}"),
                &format!("time brigade-thread / {peer}"),
                Goal::Below(1.0),
                ratio(seconds(workload, "brigade-thread"), seconds(workload, peer)),
            ));
        }
    }
    targets.extend([
        target(
            "tokio noop within 1.5× the tokio mpsc pool",
            "time brigade-tokio / tokio-mpsc-pool",
            Goal::AtMost(1.5),
            ratio(noop("brigade-tokio"), noop("tokio-mpsc-pool")),
        ),
        target(
            "tokio noop ≥ 40× faster than JoinSet + Semaphore",
            "time tokio-joinset / brigade-tokio",
            Goal::AtLeast(40.0),
            ratio(noop("tokio-joinset"), noop("brigade-tokio")),
        ),
        target(
            "sleep makespan ≤ 1.05× ideal on threads",
            "brigade-thread makespan / 100 ms ideal",
            Goal::AtMost(1.05),
            summary.value("sleep", "brigade-thread", "ratio_to_ideal"),
        ),
        target(
            "middleware stack ≤ 10% over bare (threads)",
            "% brigade-thread+mw over brigade-thread",
            Goal::AtMost(10.0),
            over("brigade-thread+mw", "brigade-thread"),
        ),
        target(
            "middleware stack ≤ 10% over bare (tokio)",
            "% brigade-tokio+mw over brigade-tokio",
            Goal::AtMost(10.0),
            over("brigade-tokio+mw", "brigade-tokio"),
        ),
        metrics_target(ratio(
            noop("brigade-thread+metrics"),
            noop("brigade-thread"),
        )),
        target(
            "≤ 96 B pool overhead per queued job (threads, submit)",
            "brigade-thread bytes per queued job − job size, handle kept",
            Goal::AtMost(96.0),
            summary.value("memory", "brigade-thread", "overhead_per_job"),
        ),
        target(
            "≤ 96 B pool overhead per queued job (tokio, submit)",
            "brigade-tokio bytes per queued job − job size, handle kept",
            Goal::AtMost(96.0),
            summary.value("memory", "brigade-tokio", "overhead_per_job"),
        ),
        target(
            "≤ 48 B pool overhead per queued job (threads, execute)",
            "brigade-thread/execute bytes per queued job − job size",
            Goal::AtMost(48.0),
            summary.value("memory", "brigade-thread/execute", "overhead_per_job"),
        ),
        target(
            "idle pool ≈ 0 CPU (threads)",
            "brigade-thread CPU ms per idle second",
            Goal::AtMost(1.0),
            summary.value("idle", "brigade-thread", "cpu_ms_per_s"),
        ),
        target(
            "idle pool ≈ 0 CPU (tokio)",
            "brigade-tokio CPU ms per idle second",
            Goal::AtMost(1.0),
            summary.value("idle", "brigade-tokio", "cpu_ms_per_s"),
        ),
    ]);
    targets.push(idle_round_trip_target(idle_round_trip));
    targets
}

/// What a recorder costs: the subject exists only in a runner built with the metrics
/// feature (`--metrics`), so a plain run says how to measure it.
fn metrics_target(value: Option<f64>) -> Target {
    let mut target = target(
        "metrics on, recorder installed: noop ≤ 1.10× bare",
        "time brigade-thread+metrics / brigade-thread (both built with the feature)",
        Goal::AtMost(1.10),
        value,
    );
    if value.is_none() {
        target.margin = "run `cargo xtask bench --metrics noop/brigade-thread`".to_owned();
    }
    target
}

/// The one target this run cannot measure: a lone job's round trip needs criterion's many
/// iterations, so its value is criterion's last median, with its age, or a pointer to the
/// command that measures it.
fn idle_round_trip_target(estimate: Option<&Estimate>) -> Target {
    let name = "thread submit + join of one job on an idle pool ≤ 3 µs";
    match estimate {
        Some(estimate) => target(
            name,
            &format!(
                "criterion {} median in µs, written {} ago",
                criterion::IDLE_ROUND_TRIP.describe(),
                criterion::age(estimate.age)
            ),
            Goal::AtMost(3.0),
            Some(estimate.median_ns / 1e3),
        ),
        None => {
            let mut target = target(
                name,
                &format!(
                    "criterion {} median in µs",
                    criterion::IDLE_ROUND_TRIP.describe()
                ),
                Goal::AtMost(3.0),
                None,
            );
            target.margin = format!("run `{}`", criterion::IDLE_ROUND_TRIP.command);
            target
        }
    }
}

pub(crate) fn table(targets: &[Target]) -> String {
    let mut out = String::from("\ntargets\n");
    let width = targets
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0);
    for t in targets {
        let pad = width - t.name.chars().count();
        out.push_str(&format!(
            "  {}{}  {:>12}  {:>8}  {:<6}  {}\n",
            t.name,
            " ".repeat(pad),
            t.verdict(),
            t.shown(),
            t.goal,
            t.margin
        ));
    }
    out.push_str(&format!(
        "  (the idle round trip is criterion's {}: `{}`)\n",
        criterion::IDLE_ROUND_TRIP.describe(),
        criterion::IDLE_ROUND_TRIP.command
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_say_how_far() {
        assert_eq!(margin_at_most(0.5, 1.0), "50% under the limit");
        assert_eq!(margin_at_most(2.0, 1.0), "2.00× the limit");
        assert_eq!(margin_at_least(5.0, 10.0), "2.0× short");
        assert_eq!(margin_at_least(20.0, 10.0), "2.00× the goal");
        assert_eq!(margin_below(0.8, 1.0), "20% under the limit");
        assert_eq!(margin_below(1.0, 1.0), "1.00× the limit");
    }

    #[test]
    fn verdicts_follow_goals() {
        assert_eq!(
            target("t", "m", Goal::AtMost(1.1), Some(1.0)).verdict(),
            "MET"
        );
        assert_eq!(
            target("t", "m", Goal::AtLeast(10.0), Some(2.0)).verdict(),
            "MISSED"
        );
        assert_eq!(
            target("t", "m", Goal::AtLeast(10.0), None).verdict(),
            "not measured"
        );
        assert_eq!(
            target("t", "m", Goal::Below(1.0), Some(1.0)).verdict(),
            "MISSED"
        );
        assert_eq!(
            target("t", "m", Goal::Below(1.0), Some(0.9)).verdict(),
            "MET"
        );
    }

    #[test]
    fn the_idle_round_trip_row_says_how_to_measure_it() {
        let missing = idle_round_trip_target(None);
        assert_eq!(missing.verdict(), "not measured");
        assert!(missing.margin.contains("--bench submit -- submit_join"));
        let estimate = Estimate {
            median_ns: 2_500.0,
            age: std::time::Duration::from_secs(90),
        };
        let measured = idle_round_trip_target(Some(&estimate));
        assert_eq!(measured.value, Some(2.5));
        assert_eq!(measured.verdict(), "MET");
        assert!(measured.measure.contains("1 min ago"));
    }
}
