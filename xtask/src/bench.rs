//! `cargo xtask bench`: runs the `brigade-bench` binary in release mode, follows its JSON
//! lines with progress bars, then summarises and writes the reports.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::machine::Machine;
use crate::summary::Summary;

mod durable;

/// One measurement, as `brigade-bench` prints it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Sample {
    pub(crate) workload: String,
    pub(crate) subject: String,
    pub(crate) round: usize,
    pub(crate) metrics: BTreeMap<String, f64>,
}

/// Everything a run produced: the runner's plan and its samples.
#[derive(Debug)]
pub(crate) struct Collected {
    pub(crate) plan: Value,
    /// Workloads in run order, each with its subjects in report order.
    pub(crate) order: Vec<(String, Vec<String>)>,
    pub(crate) samples: Vec<Sample>,
}

pub(crate) fn run(args: Vec<String>) -> Result<(), String> {
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!("{}", crate::USAGE);
        return Ok(());
    }
    // The durable suite needs a database, so it runs only when asked for by name.
    if args.iter().any(|arg| arg == "durable") {
        let rest: Vec<String> = args.into_iter().filter(|arg| arg != "durable").collect();
        return durable::run(&rest);
    }
    // Off by default: with it, every brigade-thread row would carry the feature's cost.
    let metrics = args.iter().any(|arg| arg == "--metrics");
    let args: Vec<String> = args.into_iter().filter(|arg| arg != "--metrics").collect();
    let collected = collect(&args, if metrics { &["metrics"] } else { &[] })?;
    let machine = Machine::describe();
    let summary = Summary::new(&collected);
    println!("{}", summary.table());
    let idle_round_trip = crate::criterion::IDLE_ROUND_TRIP.estimate();
    let targets = crate::targets::evaluate(&summary, idle_round_trip.as_ref());
    println!("{}", crate::targets::table(&targets));
    println!("{}", summary.noise_note());
    let dir = crate::report_dir();
    crate::report::write(&dir, &machine, &collected, &summary, &targets)?;
    println!("reports: {}", dir.display());
    Ok(())
}

fn collect(args: &[String], features: &[&str]) -> Result<Collected, String> {
    let mut child = crate::runner("brigade-benches", "brigade-bench", features)
        .args(args)
        .current_dir(crate::workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot run the bench runner: {error}"))?;
    let stdout = child.stdout.take().ok_or("no stdout from the runner")?;

    // Two bars: the whole run, and the workload under way (its rounds × subjects).
    let bars = MultiProgress::new();
    let overall_style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30.cyan}] {pos}/{len} samples (eta {eta})",
    )
    .map_err(|error| error.to_string())?
    .progress_chars("=> ");
    let workload_style = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
        .map_err(|error| error.to_string())?
        .progress_chars("=> ");
    let progress = bars.add(
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{elapsed_precise} building the runner…")
                .map_err(|error| error.to_string())?,
        ),
    );
    let current = bars.add(
        ProgressBar::new(0)
            .with_style(workload_style)
            .with_message("calibrating…"),
    );
    current.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut per_workload: BTreeMap<String, u64> = BTreeMap::new();
    let mut current_workload = String::new();

    let mut plan = Value::Null;
    let mut order = Vec::new();
    let mut samples = Vec::new();
    let mut done = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|error| error.to_string())?;
        let event: Value = serde_json::from_str(&line)
            .map_err(|error| format!("runner printed `{line}`: {error}"))?;
        let label = || {
            format!(
                "{}/{}",
                event["workload"].as_str().unwrap_or("?"),
                event["subject"].as_str().unwrap_or("?")
            )
        };
        match event["event"].as_str() {
            Some("plan") => {
                order = plan_order(&event);
                progress.set_length(event["total"].as_u64().unwrap_or(0));
                progress.set_style(overall_style.clone());
                if let Some(counts) = event["samples"].as_object() {
                    per_workload = counts
                        .iter()
                        .map(|(name, count)| (name.clone(), count.as_u64().unwrap_or(0)))
                        .collect();
                }
                plan = event;
            }
            Some("calibrate" | "start") => {
                let workload = event["workload"].as_str().unwrap_or("?");
                if workload != current_workload {
                    current_workload = workload.to_owned();
                    current.reset();
                    current.set_length(per_workload.get(workload).copied().unwrap_or(0));
                }
                current.set_message(if event["event"] == "calibrate" {
                    format!("{} (finding half load)", label())
                } else {
                    format!(
                        "{} round {}",
                        label(),
                        event["round"].as_u64().unwrap_or(0) + 1
                    )
                });
            }
            Some("sample") => {
                samples.push(serde_json::from_value(event).map_err(|error| error.to_string())?);
                progress.inc(1);
                current.inc(1);
            }
            Some("done") => done = true,
            _ => progress.println(format!("runner: {line}")),
        }
    }
    current.finish_and_clear();
    progress.finish_and_clear();
    let status = child.wait().map_err(|error| error.to_string())?;
    if !status.success() || !done {
        return Err(format!("the benchmark runner failed ({status})"));
    }
    Ok(Collected {
        plan,
        order,
        samples,
    })
}

fn plan_order(plan: &Value) -> Vec<(String, Vec<String>)> {
    // The runner lists workloads by name; report them in its run order.
    let listed = plan["workloads"].as_object().cloned().unwrap_or_default();
    let run_order = [
        "noop",
        "spin",
        "cpu",
        "sleep",
        "latency",
        "middleware",
        "memory",
        "idle",
    ];
    let mut order: Vec<(String, Vec<String>)> = run_order
        .iter()
        .filter_map(|name| {
            listed
                .get(*name)
                .map(|subjects| (name.to_string(), subjects))
        })
        .chain(
            listed
                .iter()
                .filter(|(name, _)| !run_order.contains(&name.as_str()))
                .map(|(name, subjects)| (name.clone(), subjects)),
        )
        .map(|(name, subjects)| {
            let subjects = subjects
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|subject| subject.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (name, subjects)
        })
        .collect();
    order.retain(|(_, subjects): &(String, Vec<String>)| !subjects.is_empty());
    order
}
