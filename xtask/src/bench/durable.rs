//! `cargo xtask bench durable [--quick]`: runs the `brigade-durable` binary (in
//! release mode) against one PostgreSQL server, then prints and writes the report:
//! throughput on 1, 2 and 4 worker processes and pickup latency, brigade against apalis,
//! with the targets.
//!
//! Not part of the default suite: it needs a database (`DATABASE_URL`, else a throwaway
//! local cluster started from the machine's PostgreSQL binaries).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::machine::Machine;
use crate::summary::format_value;
use crate::targets::{Goal, Target, ratio, target};

/// What the runner printed: its plan and its samples, in run order.
struct Collected {
    plan: Value,
    samples: Vec<Value>,
}

impl Collected {
    fn sample(&self, workload: &str, subject: &str, processes: u64) -> Option<&Value> {
        self.samples.iter().find(|sample| {
            sample["workload"] == workload
                && sample["subject"] == subject
                && sample["processes"].as_u64() == Some(processes)
        })
    }

    fn metric(&self, workload: &str, subject: &str, processes: u64, metric: &str) -> Option<f64> {
        self.sample(workload, subject, processes)
            .and_then(|sample| sample[metric].as_f64())
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|arg| arg == "--quick");
    if let Some(other) = args.iter().find(|arg| *arg != "--quick") {
        return Err(format!("`bench durable` takes only --quick, not `{other}`"));
    }
    let collected = collect(quick)?;
    let machine = Machine::describe();
    let targets = evaluate(&collected);
    let report = markdown(&machine, &collected, &targets);
    println!("{report}");
    let dir = crate::report_dir();
    write(&dir, &machine, &collected, &targets, &report)?;
    println!("reports: {}", dir.join("durable.md").display());
    Ok(())
}

fn collect(quick: bool) -> Result<Collected, String> {
    let mut command = Command::new(crate::cargo());
    command
        .args([
            "run",
            "--release",
            "--quiet",
            "--package",
            "brigade-benches",
        ])
        .args(["--bin", "brigade-durable", "--"]);
    if quick {
        command.arg("--quick");
    }
    let mut child = command
        .current_dir(crate::workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    let stdout = child.stdout.take().ok_or("no stdout from the runner")?;
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30.cyan}] {pos}/{len} {msg}")
            .map_err(|error| error.to_string())?
            .progress_chars("=> "),
    );
    progress.set_message("building the runner, starting the database…");
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut plan = Value::Null;
    let mut samples = Vec::new();
    let mut done = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|error| error.to_string())?;
        let event: Value = serde_json::from_str(&line)
            .map_err(|error| format!("runner printed `{line}`: {error}"))?;
        match event["event"].as_str() {
            Some("plan") => {
                let measurements = event["measurements"].as_array().map_or(0, Vec::len);
                progress.set_length(measurements as u64);
                plan = event;
            }
            Some("start") => progress.set_message(format!(
                "{}/{} on {} process(es)",
                event["workload"].as_str().unwrap_or("?"),
                event["subject"].as_str().unwrap_or("?"),
                event["processes"]
            )),
            Some("sample") => {
                samples.push(event);
                progress.inc(1);
            }
            Some("done") => done = true,
            _ => progress.println(format!("runner: {line}")),
        }
    }
    progress.finish_and_clear();
    let status = child.wait().map_err(|error| error.to_string())?;
    if !status.success() || !done {
        return Err(format!("the durable benchmark runner failed ({status})"));
    }
    Ok(Collected { plan, samples })
}

const PROCESSES: [u64; 3] = [1, 2, 4];

fn evaluate(collected: &Collected) -> Vec<Target> {
    let rate = |subject: &str, processes: u64| {
        collected.metric("throughput", subject, processes, "jobs_per_s")
    };
    let mut targets: Vec<Target> = PROCESSES
        .iter()
        .map(|&processes| {
            target(
                &format!("≥ 2× apalis's throughput, {processes} process(es)"),
                "jobs/s brigade / apalis",
                Goal::AtLeast(2.0),
                ratio(rate("brigade", processes), rate("apalis", processes)),
            )
        })
        .collect();
    let p99 = |subject: &str| collected.metric("latency", subject, 1, "p99_us");
    targets.push(target(
        "p99 pickup latency ≤ apalis's",
        "p99 enqueue → start brigade / apalis",
        Goal::AtMost(1.0),
        ratio(p99("brigade"), p99("apalis")),
    ));
    let best = PROCESSES
        .iter()
        .filter_map(|&processes| rate("brigade", processes).map(|rate| (processes, rate)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    targets.push(target(
        "≥ 5,000 jobs/s end to end",
        &best.map_or_else(
            || "brigade jobs/s".to_owned(),
            |(processes, _)| format!("brigade jobs/s, best ({processes} process(es))"),
        ),
        Goal::AtLeast(5000.0),
        best.map(|(_, rate)| rate),
    ));
    targets
}

fn markdown(machine: &Machine, collected: &Collected, targets: &[Target]) -> String {
    let plan = &collected.plan;
    let server = &plan["server"];
    let text = |value: &Value| value.as_str().unwrap_or("?").to_owned();
    let count = |value: &Value| value.as_f64().map_or_else(|| "?".to_owned(), thousands);
    let mut out = String::new();
    out.push_str(&format!(
        "Measured {} on {} cores ({}), {}, {}, commit `{}`; scale `{}`, one run per row.\n\n",
        machine.date,
        machine.cores,
        machine.cpu,
        machine.os,
        machine.rustc,
        machine.commit,
        text(&plan["scale"]),
    ));
    out.push_str(&format!(
        "Database: PostgreSQL {} ({}) on the same machine, fsync={}, synchronous_commit={}, \
         shared_buffers={}; a fresh database per row.\n\n",
        text(&server["version"]),
        text(&server["source"]),
        text(&server["fsync"]),
        text(&server["synchronous_commit"]),
        text(&server["shared_buffers"]),
    ));

    out.push_str(&format!(
        "#### throughput\n\n{} noop jobs enqueued up front in batches of 1,000, then drained by \
         worker processes of {} jobs at once each; jobs/s from the first job's start to the \
         last job's recorded end.\n\n",
        count(&plan["throughput_jobs"]),
        count(&plan["concurrency"]),
    ));
    out.push_str("| processes | brigade (jobs/s) | apalis (jobs/s) | brigade / apalis |\n");
    out.push_str("| --- | ---: | ---: | ---: |\n");
    let shown = |value: Option<f64>| value.map_or_else(|| "–".to_owned(), format_value);
    let ratio_shown =
        |value: Option<f64>| value.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"));
    for processes in PROCESSES {
        let brigade = collected.metric("throughput", "brigade", processes, "jobs_per_s");
        let apalis = collected.metric("throughput", "apalis", processes, "jobs_per_s");
        out.push_str(&format!(
            "| {processes} | {} | {} | {} |\n",
            shown(brigade),
            shown(apalis),
            ratio_shown(ratio(brigade, apalis)),
        ));
    }
    let prefilled = collected.metric("throughput-prefilled", "brigade", 1, "jobs_per_s");
    let empty = collected.metric("throughput", "brigade", 1, "jobs_per_s");
    out.push_str(&format!(
        "| 1, {} finished rows in the table | {} | – | {} of the empty table's |\n\n",
        count(&plan["prefilled_rows"]),
        shown(prefilled),
        ratio_shown(ratio(prefilled, empty)),
    ));

    out.push_str(&format!(
        "#### latency\n\nJobs enqueued one at a time at {} jobs/s on one worker process: each \
         job's enqueue → start delay ({} jobs).\n\n",
        count(&plan["latency_rate"]),
        count(&plan["latency_jobs"]),
    ));
    out.push_str("| subject | p50 (ms) | p99 (ms) | max (ms) | achieved (jobs/s) |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: |\n");
    for subject in ["brigade", "apalis"] {
        let ms = |metric: &str| {
            shown(
                collected
                    .metric("latency", subject, 1, metric)
                    .map(|us| us / 1000.0),
            )
        };
        out.push_str(&format!(
            "| {subject} | {} | {} | {} | {} |\n",
            ms("p50_us"),
            ms("p99_us"),
            ms("max_us"),
            shown(collected.metric("latency", subject, 1, "achieved_jobs_per_s")),
        ));
    }

    out.push_str("\n#### targets\n\n| target | measured | value | goal | verdict | margin |\n");
    out.push_str("| --- | --- | ---: | --- | --- | --- |\n");
    for t in targets {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            t.name,
            t.measure,
            t.shown(),
            t.goal,
            t.verdict(),
            t.margin
        ));
    }
    out
}

/// A whole number with thousands separators, as the docs write sizes: `1,000,000`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

fn write(
    dir: &Path,
    machine: &Machine,
    collected: &Collected,
    targets: &[Target],
    report: &str,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let md = dir.join("durable.md");
    std::fs::write(&md, format!("### Durable queues\n\n{report}"))
        .map_err(|error| format!("{}: {error}", md.display()))?;
    let raw = json!({
        "machine": machine,
        "plan": collected.plan,
        "samples": collected.samples,
        "targets": targets,
    });
    let path = dir.join("durable.json");
    let text = serde_json::to_string_pretty(&raw).map_err(|error| error.to_string())?;
    std::fs::write(&path, text).map_err(|error| format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1_000_000.0), "1,000,000");
        assert_eq!(thousands(500.0), "500");
        assert_eq!(thousands(16.0), "16");
    }
}
