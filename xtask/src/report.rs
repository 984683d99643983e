//! `report.md` (the tables, the targets, the machine) and `report.json` (all of it plus every
//! raw sample), next to `chart.svg`.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::bench::Collected;
use crate::machine::Machine;
use crate::summary::Summary;
use crate::targets::Target;

pub(crate) fn write(
    dir: &Path,
    machine: &Machine,
    collected: &Collected,
    summary: &Summary,
    targets: &[Target],
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let scale = collected.plan["scale"].as_str().unwrap_or("full");
    let title = format!(
        "brigade benchmarks ({scale}) — {} cores, {}, {}",
        machine.cores, machine.rustc, machine.date
    );
    crate::chart::draw(&dir.join("chart.svg"), summary, &title)?;
    let markdown = markdown(machine, collected, summary, targets);
    std::fs::write(dir.join("report.md"), markdown).map_err(|e| e.to_string())?;
    let report = json!({
        "machine": machine,
        "plan": collected.plan,
        "summary": summary,
        "targets": targets,
        "samples": collected.samples,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("report.json"), text).map_err(|e| e.to_string())?;
    Ok(())
}

fn markdown(
    machine: &Machine,
    collected: &Collected,
    summary: &Summary,
    targets: &[Target],
) -> String {
    let plan = &collected.plan;
    let mut out = String::new();
    let _ = writeln!(out, "# brigade benchmarks\n");
    let _ = writeln!(
        out,
        "Measured {} on {} cores ({}), {}, {}, commit `{}`; scale `{}`, {} rounds \
         (memory, idle and latency at most 3), subjects interleaved in alternating order. \
         Medians; `spread` is how far the rounds of the ranked metric lie apart (slowest − \
         fastest, over the median); the last column is the ratio to the reference subject \
         (lower is better).\n",
        machine.date,
        machine.cores,
        machine.cpu,
        machine.os,
        machine.rustc,
        machine.commit,
        plan["scale"].as_str().unwrap_or("?"),
        plan["rounds"].as_u64().unwrap_or(0),
    );
    if let Some(calibration) = plan.get("calibration") {
        let _ = writeln!(
            out,
            "Calibration: {} spin rounds ≈ 10 µs (cpu job), {} ≈ 100 µs (latency job); \
             `thread::sleep(1 ms)` takes {:.0} µs here, so no thread pool's sleep makespan \
             can beat {:.3}× ideal.\n",
            calibration["cpu_rounds"],
            calibration["latency_rounds"],
            calibration["sleep_us"].as_f64().unwrap_or(f64::NAN),
            calibration["sleep_us"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        );
    }
    for (workload, header, rows) in summary.tables() {
        let _ = writeln!(out, "### {workload}\n");
        let size = &plan["sizes"][workload.as_str()];
        if workload == "idle" {
            let _ = writeln!(
                out,
                "{} ({} workers).\n",
                describe(&workload),
                size["workers"]
            );
        } else {
            let _ = writeln!(
                out,
                "{} ({} jobs, {} workers).\n",
                describe(&workload),
                thousands(size["jobs"].as_u64().unwrap_or(0)),
                size["workers"]
            );
        }
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { " --- |" } else { " ---: |" })
                .collect::<String>()
        );
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "### Targets\n");
    let _ = writeln!(
        out,
        "| target | measured | value | goal | verdict | margin |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | --- | --- | --- |");
    for target in targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            target.name,
            target.measure,
            target.shown(),
            target.goal,
            target.verdict(),
            target.margin
        );
    }
    let _ = writeln!(out, "\n{}", summary.noise_note());
    let _ = writeln!(out, "\n![chart](chart.svg)");
    out
}

/// What a workload measures, in one sentence for the report.
fn describe(workload: &str) -> &'static str {
    match workload {
        "noop" => "Jobs that return their input: the dispatch cost per job, every result collected",
        "spin" => "Jobs of ~200 multiply-adds: small CPU jobs, where dispatch still dominates",
        "cpu" => "Jobs of ~10 µs of arithmetic: how close each pool gets to the cores' speed-up",
        "sleep" => {
            "Jobs that sleep 1 ms (threads block, async tasks await a timer): makespan against the ideal jobs × 1 ms / workers"
        }
        "latency" => {
            "Submit → start delay of ~100 µs jobs, submissions paced at half of the subject's own measured capacity"
        }
        "middleware" => {
            "The noop workload through retry + an unlimited rate limit + a backpressure layer (`+mw`), and through retry + backpressure alone (`+mw-no-rate`, no clock read at a start), against the bare pools"
        }
        "memory" => {
            "Jobs queued behind workers blocked on a gate, in a fresh process per measurement: RSS growth per queued job from before the pool existed"
        }
        "idle" => {
            "CPU time the pool's threads burn per second while it sits idle (1 s window, 0.2 s with --quick), after each worker ran one job"
        }
        _ => "A workload",
    }
}

/// `1000000` as `1,000,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(20_000), "20,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
