//! `cargo xtask bench durable [postgres|redis|sqlite]... [--quick]`: runs the
//! `brigade-durable` binary (in release mode) on every engine, or the ones named, then
//! prints and writes the report: per engine, throughput on its worker process counts and
//! pickup latency, brigade against apalis's backend for that engine, with the issues'
//! targets.
//!
//! Not part of the default suite: it needs servers (PostgreSQL: `DATABASE_URL`, else a
//! throwaway local cluster from the machine's binaries; Redis: a throwaway `redis-server`;
//! SQLite: files in the temporary directory).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

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
    fn sample(
        &self,
        engine: &str,
        workload: &str,
        subject: &str,
        processes: u64,
    ) -> Option<&Value> {
        self.samples.iter().find(|sample| {
            sample["engine"] == engine
                && sample["workload"] == workload
                && sample["subject"] == subject
                && sample["processes"].as_u64() == Some(processes)
        })
    }

    fn metric(
        &self,
        engine: &str,
        workload: &str,
        subject: &str,
        processes: u64,
        metric: &str,
    ) -> Option<f64> {
        self.sample(engine, workload, subject, processes)
            .and_then(|sample| sample[metric].as_f64())
    }

    /// The engines run, in run order.
    fn engines(&self) -> Vec<String> {
        self.plan["engines"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|engine| engine.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The throughput process counts measured on `engine`, ascending.
    fn processes(&self, engine: &str) -> Vec<u64> {
        let mut counts: Vec<u64> = self
            .samples
            .iter()
            .filter(|sample| sample["engine"] == engine && sample["workload"] == "throughput")
            .filter_map(|sample| sample["processes"].as_u64())
            .collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }
}

/// What the report says of each engine: its heading, apalis's backend, and the issue's
/// floor on brigade's best throughput, if it sets one.
struct EngineReport {
    title: &'static str,
    apalis: &'static str,
    floor: Option<f64>,
}

fn engine_report(engine: &str) -> EngineReport {
    match engine {
        "postgres" => EngineReport {
            title: "PostgreSQL",
            apalis: "apalis-postgres",
            floor: Some(5_000.0),
        },
        "redis" => EngineReport {
            title: "Redis, appendfsync always",
            apalis: "apalis-redis",
            floor: Some(10_000.0),
        },
        "redis-everysec" => EngineReport {
            title: "Redis, appendfsync everysec (the common production setting)",
            apalis: "apalis-redis",
            floor: Some(10_000.0),
        },
        "sqlite" => EngineReport {
            title: "SQLite",
            apalis: "apalis-sqlite",
            floor: None,
        },
        _ => EngineReport {
            title: "unknown engine",
            apalis: "apalis",
            floor: None,
        },
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|arg| arg == "--quick");
    let engines: Vec<&String> = args.iter().filter(|arg| *arg != "--quick").collect();
    if let Some(other) = engines
        .iter()
        .find(|arg| !["postgres", "redis", "sqlite"].contains(&arg.as_str()))
    {
        return Err(format!(
            "`bench durable` takes postgres, redis, sqlite and --quick, not `{other}`"
        ));
    }
    let collected = collect(quick, &engines)?;
    let machine = Machine::describe();
    let targets = evaluate(&collected);
    let report = markdown(&machine, &collected, &targets);
    println!("{report}");
    let dir = crate::report_dir();
    write(&dir, &machine, &collected, &targets, &report)?;
    println!("reports: {}", dir.join("durable.md").display());
    Ok(())
}

fn collect(quick: bool, engines: &[&String]) -> Result<Collected, String> {
    let mut command = crate::runner("brigade-benches", "brigade-durable", &[]);
    command.args(engines);
    if quick {
        command.arg("--quick");
    }
    let mut child = command
        .current_dir(crate::workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot run the durable bench: {error}"))?;
    let stdout = child.stdout.take().ok_or("no stdout from the runner")?;
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30.cyan}] {pos}/{len} {msg}")
            .map_err(|error| error.to_string())?
            .progress_chars("=> "),
    );
    progress.set_message("building the runner, starting the servers…");
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
                "{} {}/{} on {} process(es)",
                event["engine"].as_str().unwrap_or("?"),
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

fn evaluate(collected: &Collected) -> Vec<Target> {
    let mut targets = Vec::new();
    for engine in collected.engines() {
        let engine = engine.as_str();
        let about = engine_report(engine);
        let rate = |subject: &str, processes: u64| {
            collected.metric(engine, "throughput", subject, processes, "jobs_per_s")
        };
        for processes in collected.processes(engine) {
            targets.push(target(
                &format!(
                    "{}: ≥ 2× {}'s throughput, {processes} process(es)",
                    about.title, about.apalis
                ),
                &format!("jobs/s brigade / {}", about.apalis),
                Goal::AtLeast(2.0),
                ratio(rate("brigade", processes), rate("apalis", processes)),
            ));
        }
        let p99 = |subject: &str| collected.metric(engine, "latency", subject, 1, "p99_us");
        if p99("brigade").is_some() {
            targets.push(target(
                &format!("{}: p99 pickup latency ≤ {}'s", about.title, about.apalis),
                &format!("p99 enqueue → start brigade / {}", about.apalis),
                Goal::AtMost(1.0),
                ratio(p99("brigade"), p99("apalis")),
            ));
        }
        if let Some(floor) = about.floor {
            let best = collected
                .processes(engine)
                .into_iter()
                .filter_map(|processes| rate("brigade", processes).map(|rate| (processes, rate)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            targets.push(target(
                &format!("{}: ≥ {} jobs/s end to end", about.title, thousands(floor)),
                &best.map_or_else(
                    || "brigade jobs/s".to_owned(),
                    |(processes, _)| format!("brigade jobs/s, best ({processes} process(es))"),
                ),
                Goal::AtLeast(floor),
                best.map(|(_, rate)| rate),
            ));
        }
    }
    targets
}

/// The line saying what `engine`'s server ran with.
fn server_line(engine: &str, server: &Value) -> String {
    let text = |value: &Value| value.as_str().unwrap_or("?").to_owned();
    match engine {
        "postgres" => format!(
            "PostgreSQL {} ({}) on the same machine, fsync={}, synchronous_commit={}, \
             shared_buffers={}; a fresh database per row.",
            text(&server["version"]),
            text(&server["source"]),
            text(&server["fsync"]),
            text(&server["synchronous_commit"]),
            text(&server["shared_buffers"]),
        ),
        "redis" | "redis-everysec" => format!(
            "Redis {} ({}) on the same machine, appendonly=yes, appendfsync={}, no RDB \
             snapshots; flushed before each row.",
            text(&server["version"]),
            text(&server["source"]),
            text(&server["appendfsync"]),
        ),
        "sqlite" => format!(
            "SQLite {} ({}), journal_mode={}, synchronous={} on every connection of both \
             sides; every process opens the same file.",
            text(&server["version"]),
            text(&server["source"]),
            text(&server["journal_mode"]),
            text(&server["synchronous"]),
        ),
        _ => String::new(),
    }
}

fn markdown(machine: &Machine, collected: &Collected, targets: &[Target]) -> String {
    let plan = &collected.plan;
    let text = |value: &Value| value.as_str().unwrap_or("?").to_owned();
    let count = |value: &Value| value.as_f64().map_or_else(|| "?".to_owned(), thousands);
    let shown = |value: Option<f64>| value.map_or_else(|| "–".to_owned(), format_value);
    let ratio_shown =
        |value: Option<f64>| value.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"));
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
        "Throughput: {} noop jobs enqueued up front in batches of 1,000, then drained by \
         worker processes of {} jobs at once each; jobs/s from the first job's start to the \
         first look (every 5 ms) that finds no job unfinished. Latency: jobs enqueued one at \
         a time at {} jobs/s on one worker process; each job's enqueue → start delay ({} \
         jobs).\n",
        count(&plan["throughput_jobs"]),
        count(&plan["concurrency"]),
        count(&plan["latency_rate"]),
        count(&plan["latency_jobs"]),
    ));

    for engine in collected.engines() {
        let engine = engine.as_str();
        let about = engine_report(engine);
        let jobs = &plan["throughput_jobs_per_engine"][engine];
        let capped = if jobs == &plan["throughput_jobs"] {
            String::new()
        } else {
            format!(
                " Throughput rows drain {} jobs: apalis-redis 1.0.0 promotes every due job \
                 with one Lua `unpack`, which fails past about 8,000.",
                count(jobs)
            )
        };
        out.push_str(&format!(
            "\n### {}\n\n{}{capped}\n\n",
            about.title,
            server_line(engine, &plan["servers"][engine])
        ));
        out.push_str(&format!(
            "| processes | brigade (jobs/s) | {0} (jobs/s) | brigade / {0} |\n",
            about.apalis
        ));
        out.push_str("| --- | ---: | ---: | ---: |\n");
        for processes in collected.processes(engine) {
            let rate = |subject: &str| {
                collected.metric(engine, "throughput", subject, processes, "jobs_per_s")
            };
            // A row that overran the time bound shows the rate of what it finished.
            let cell = |subject: &str| {
                let sample = collected.sample(engine, "throughput", subject, processes);
                match sample {
                    Some(sample) if sample["failed"].is_string() => format!(
                        "{} (a worker failed after {} of {} jobs: {})",
                        shown(rate(subject)),
                        count(&sample["finished"]),
                        count(&sample["jobs"]),
                        text(&sample["failed"]),
                    ),
                    Some(sample) if sample["overran"] == true => format!(
                        "{} ({} of {} jobs in {:.0} s, then the bound)",
                        shown(rate(subject)),
                        count(&sample["finished"]),
                        count(&sample["jobs"]),
                        sample["seconds"].as_f64().unwrap_or(0.0),
                    ),
                    _ => shown(rate(subject)),
                }
            };
            out.push_str(&format!(
                "| {processes} | {} | {} | {} |\n",
                cell("brigade"),
                cell("apalis"),
                ratio_shown(ratio(rate("brigade"), rate("apalis"))),
            ));
        }
        let prefilled =
            collected.metric(engine, "throughput-prefilled", "brigade", 1, "jobs_per_s");
        if prefilled.is_some() {
            let empty = collected.metric(engine, "throughput", "brigade", 1, "jobs_per_s");
            out.push_str(&format!(
                "| 1, {} finished rows in the table | {} | – | {} of the empty table's |\n",
                count(&plan["prefilled_rows"]),
                shown(prefilled),
                ratio_shown(ratio(prefilled, empty)),
            ));
        }
        if collected.sample(engine, "latency", "brigade", 1).is_some() {
            out.push_str(
                "\n| pickup latency | p50 (ms) | p99 (ms) | max (ms) | achieved (jobs/s) |\n",
            );
            out.push_str("| --- | ---: | ---: | ---: | ---: |\n");
            for (subject, name) in [("brigade", "brigade"), ("apalis", about.apalis)] {
                let ms = |metric: &str| {
                    shown(
                        collected
                            .metric(engine, "latency", subject, 1, metric)
                            .map(|us| us / 1000.0),
                    )
                };
                out.push_str(&format!(
                    "| {name} | {} | {} | {} | {} |\n",
                    ms("p50_us"),
                    ms("p99_us"),
                    ms("max_us"),
                    shown(collected.metric(engine, "latency", subject, 1, "achieved_jobs_per_s")),
                ));
            }
        }
    }

    out.push_str("\n### Targets\n\n| target | measured | value | goal | verdict | margin |\n");
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
