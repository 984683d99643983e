//! Runs the workloads on every subject, interleaved over rounds, and prints one JSON object
//! per line on stdout for `cargo xtask bench` (which draws the progress bars and reports).
//!
//! ```text
//! brigade-bench [--quick] [--rounds N] [FILTER…]
//! ```
//!
//! A filter picks the measurements whose `workload/subject` contains it; one written
//! `=workload/subject` picks that measurement alone (to profile one subject, say
//! `=middleware/brigade-thread` without its `+mw` twin).
//!
//! Events, in order: `plan` (what will run, with the calibration), then per measurement
//! `start` and `sample`, then `done`. The memory workload runs each measurement in a fresh
//! child process (`--memory-child SUBJECT`), since a process that already ran other pools
//! keeps their freed memory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use brigade_benches::{
    Calibration, Sample, Scale, Subject, Workload, all_subjects, half_load_pace, measure,
    measure_memory, subject_named,
};
use serde_json::json;

struct Options {
    scale: Scale,
    rounds: Option<usize>,
    filters: Vec<String>,
    memory_child: Option<String>,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        scale: Scale::Full,
        rounds: None,
        filters: Vec::new(),
        memory_child: None,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.scale = Scale::Quick,
            "--rounds" => {
                let value = args.next().ok_or("--rounds needs a number")?;
                let rounds: usize = value.parse().map_err(|_| format!("bad rounds `{value}`"))?;
                options.rounds = Some(rounds.max(1));
            }
            "--memory-child" => {
                options.memory_child = Some(args.next().ok_or("--memory-child needs a subject")?);
            }
            "-h" | "--help" => {
                return Err("usage: brigade-bench [--quick] [--rounds N] [FILTER…]".into());
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag `{flag}`")),
            _ => options.filters.push(arg),
        }
    }
    Ok(options)
}

fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the reader is gone; nothing useful is left to do but stop.
    if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn selected(filters: &[String], workload: Workload, subject: &dyn Subject) -> bool {
    let key = format!("{}/{}", workload.name(), subject.name());
    filters.is_empty()
        || filters.iter().any(|filter| match filter.strip_prefix('=') {
            Some(exact) => key == exact,
            None => key.contains(filter.as_str()),
        })
}

/// Rounds per workload: the slow, steady ones (a fresh process, a 1 s idle window) need fewer.
fn rounds_for(workload: Workload, rounds: usize) -> usize {
    match workload {
        Workload::Memory | Workload::Idle | Workload::Latency => rounds.min(3),
        _ => rounds,
    }
}

/// A B C, then C B A, …: alternating the order evens out drift (thermal, caches, page
/// cache) between the first and the last subject of a round.
fn round_order<T: Copy>(items: &[T], round: usize) -> Vec<T> {
    let mut order = items.to_vec();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

fn memory_in_child(subject: &str, scale: Scale) -> Result<Sample, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args(["--memory-child", subject]);
    if scale == Scale::Quick {
        command.arg("--quick");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .ok_or_else(|| format!("memory child for {subject} printed nothing"))?
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("memory child for {subject} failed: {status}"));
    }
    serde_json::from_str(&line).map_err(|e| e.to_string())
}

fn main() {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };

    if let Some(name) = &options.memory_child {
        let Some(subject) = subject_named(name) else {
            eprintln!("unknown subject `{name}`");
            std::process::exit(2);
        };
        match measure_memory(subject.as_ref(), options.scale) {
            Some(sample) => emit(&json!(sample)),
            None => {
                eprintln!("{name} has no queue to fill");
                std::process::exit(3);
            }
        }
        return;
    }

    let subjects = all_subjects();
    let rounds = options
        .rounds
        .unwrap_or(if options.scale == Scale::Quick { 2 } else { 5 });
    let mut plan: Vec<(Workload, Vec<usize>)> = Vec::new();
    for workload in Workload::ALL {
        let chosen: Vec<usize> = (0..subjects.len())
            .filter(|&i| {
                let subject = subjects[i].as_ref();
                subject.supports(workload) && selected(&options.filters, workload, subject)
            })
            .collect();
        if !chosen.is_empty() {
            plan.push((workload, chosen));
        }
    }
    let calibration = Calibration::measure();
    let total: usize = plan
        .iter()
        .map(|(workload, chosen)| rounds_for(*workload, rounds) * chosen.len())
        .sum();
    let listed: BTreeMap<&str, Vec<&str>> = plan
        .iter()
        .map(|(workload, chosen)| {
            (
                workload.name(),
                chosen.iter().map(|&i| subjects[i].name()).collect(),
            )
        })
        .collect();
    let per_workload: BTreeMap<&str, usize> = plan
        .iter()
        .map(|(workload, chosen)| {
            (
                workload.name(),
                rounds_for(*workload, rounds) * chosen.len(),
            )
        })
        .collect();
    let sizes: BTreeMap<&str, serde_json::Value> = plan
        .iter()
        .map(|(workload, _)| {
            (
                workload.name(),
                json!({"jobs": workload.jobs(options.scale), "workers": workload.workers()}),
            )
        })
        .collect();
    emit(&json!({
        "event": "plan",
        "samples": per_workload,
        "sizes": sizes,
        "scale": if options.scale == Scale::Quick { "quick" } else { "full" },
        "rounds": rounds,
        "total": total,
        "workloads": listed,
        "calibration": calibration,
        "workers": brigade_benches::available_parallelism(),
    }));

    for (workload, chosen) in &plan {
        let workload = *workload;
        let mut paces: BTreeMap<usize, Duration> = BTreeMap::new();
        if workload == Workload::Latency {
            for &i in chosen {
                emit(
                    &json!({"event": "calibrate", "workload": workload.name(), "subject": subjects[i].name()}),
                );
                paces.insert(
                    i,
                    half_load_pace(subjects[i].as_ref(), options.scale, calibration),
                );
            }
        }
        for round in 0..rounds_for(workload, rounds) {
            for i in round_order(chosen, round) {
                let subject = subjects[i].as_ref();
                emit(
                    &json!({"event": "start", "workload": workload.name(), "subject": subject.name(), "round": round}),
                );
                let sample = if workload == Workload::Memory {
                    match memory_in_child(subject.name(), options.scale) {
                        Ok(mut sample) => {
                            sample.round = round;
                            sample
                        }
                        Err(message) => {
                            eprintln!("{message}");
                            std::process::exit(1);
                        }
                    }
                } else {
                    measure(
                        workload,
                        subject,
                        options.scale,
                        calibration,
                        paces.get(&i).copied(),
                        round,
                    )
                };
                let mut event = json!(sample);
                event["event"] = json!("sample");
                emit(&event);
            }
        }
    }
    emit(&json!({"event": "done"}));
}
