//! `cargo xtask instructions`: what each subject's jobs cost in instructions, counted by
//! callgrind, with the ratios the wall-time targets compare. A count does not move with
//! the machine's load, so it tells two builds apart where a noisy host's seconds cannot.
//!
//! Each measurement runs `brigade-bench --quick` under `valgrind --tool=callgrind` twice,
//! with one round and with three, and divides the difference by the two extra rounds'
//! jobs: the process's fixed costs (start-up, the spin calibration) cancel out, a round's
//! own (building and shutting down its pool) are spread over its jobs, as in the timed
//! runs. How long a thread spins before it parks depends on where callgrind switched
//! threads, so a count now and then comes out a few percent high: each pair is run
//! `--repeats` times (default 3) and the median kept, with the spread shown. callgrind runs one thread at a time, so the counts hold everything every thread
//! executed, spinning included, but nothing of what threads cost each other (a cache line
//! passed between cores, a wake-up's latency): they explain a time, they do not replace it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The workloads counted by default: the ones whose targets compare peers job for job.
const WORKLOADS: [&str; 2] = ["noop/", "middleware/"];

/// The ratios worth reading, as `(what, numerator key, denominator key)`: the time targets'
/// pairs, and what the middleware stack costs without its rate limit.
const RATIOS: [(&str, &str, &str); 10] = [
    (
        "thread submit+join / crossbeam-pool",
        "noop/brigade-thread",
        "noop/crossbeam-pool",
    ),
    (
        "thread map / crossbeam-pool",
        "noop/brigade-thread/map",
        "noop/crossbeam-pool",
    ),
    (
        "thread execute / crossbeam-pool",
        "noop/brigade-thread/execute",
        "noop/crossbeam-pool",
    ),
    (
        "thread submit+join / threadpool",
        "noop/brigade-thread",
        "noop/threadpool",
    ),
    (
        "thread submit+join / rayon spawn",
        "noop/brigade-thread",
        "noop/rayon-spawn",
    ),
    (
        "tokio submit+await / tokio-mpsc-pool",
        "noop/brigade-tokio",
        "noop/tokio-mpsc-pool",
    ),
    (
        "tokio-joinset / tokio submit+await",
        "noop/tokio-joinset",
        "noop/brigade-tokio",
    ),
    (
        "thread middleware stack / bare",
        "middleware/brigade-thread+mw",
        "middleware/brigade-thread",
    ),
    (
        "thread stack without its rate limit / bare",
        "middleware/brigade-thread+mw-no-rate",
        "middleware/brigade-thread",
    ),
    (
        "tokio middleware stack / bare",
        "middleware/brigade-tokio+mw",
        "middleware/brigade-tokio",
    ),
];

/// Rounds of the longer run: the count per job is `(long − short) / ((LONG − 1) × jobs)`.
const LONG: usize = 3;

/// One measurement's count.
struct Counted {
    key: String,
    jobs: u64,
    /// The median over the repeats.
    per_job: f64,
    /// Highest less lowest of the repeats, over the median.
    spread: f64,
    /// The longer run's callgrind profile, for `callgrind_annotate`.
    profile: PathBuf,
}

pub(crate) fn run(args: Vec<String>) -> Result<(), String> {
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!("{}", crate::USAGE);
        return Ok(());
    }
    let (repeats, filters) = parse(args)?;
    require_valgrind()?;
    let bench = bench_binary()?;
    let keys = planned_keys(&bench, &filters)?;
    if keys.is_empty() {
        return Err(format!("no measurement matches {filters:?}"));
    }
    let dir = crate::report_dir().join("callgrind");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut counted = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        eprintln!("[{}/{}] {key}", index + 1, keys.len());
        counted.push(count(&bench, key, repeats, &dir)?);
    }
    let machine = crate::machine::Machine::describe();
    let counted_on = format!(
        "Counted {} at commit `{}` with {}, running `{}`.",
        machine.date,
        machine.commit,
        machine.rustc,
        bench.display()
    );
    let table = markdown(&counted_on, &counted);
    println!("{table}");
    let report = crate::report_dir().join("instructions.md");
    std::fs::write(&report, table).map_err(|e| format!("{}: {e}", report.display()))?;
    println!("report: {}\nprofiles: {}", report.display(), dir.display());
    Ok(())
}

/// The repeats (`--repeats N`, at least 1) and the filters (the default workloads when
/// none is given).
fn parse(args: Vec<String>) -> Result<(usize, Vec<String>), String> {
    let mut repeats = 3;
    let mut filters = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeats" => {
                let value = args.next().ok_or("--repeats needs a number")?;
                repeats = value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--repeats wants a whole number ≥ 1, not `{value}`"))?;
            }
            flag if flag.starts_with('-') => {
                return Err(format!("unknown flag `{flag}`\n{}", crate::USAGE));
            }
            _ => filters.push(arg),
        }
    }
    if filters.is_empty() {
        filters = WORKLOADS.iter().map(|&w| w.to_owned()).collect();
    }
    Ok((repeats, filters))
}

fn require_valgrind() -> Result<(), String> {
    let found = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        Ok(())
    } else {
        Err("valgrind is not installed (Debian: `apt-get install valgrind`)".to_owned())
    }
}

/// The runner's binary: from `$BRIGADE_RUNNERS`, else built here in release mode (callgrind
/// must run the binary itself, not `cargo run`).
fn bench_binary() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("BRIGADE_RUNNERS") {
        return Ok(crate::workspace_root().join(dir).join("brigade-bench"));
    }
    let status = Command::new(crate::cargo())
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            "brigade-benches",
            "--bin",
            "brigade-bench",
        ])
        .current_dir(crate::workspace_root())
        .status()
        .map_err(|error| format!("cannot build the bench runner: {error}"))?;
    if !status.success() {
        return Err(format!("building the bench runner failed ({status})"));
    }
    Ok(crate::target_dir().join("release").join("brigade-bench"))
}

/// Workloads with nothing to count per job: `memory` measures in child processes (which
/// callgrind does not follow), `idle` runs no jobs.
const UNCOUNTED: [&str; 2] = ["memory", "idle"];

/// Every `workload/subject` key the filters pick, in the runner's order, read off its plan.
fn planned_keys(bench: &Path, filters: &[String]) -> Result<Vec<String>, String> {
    let plan = plan(bench, filters)?;
    let workloads = plan["workloads"]
        .as_object()
        .ok_or("the runner's plan names no workloads")?;
    Ok(workloads
        .iter()
        .filter(|(workload, _)| !UNCOUNTED.contains(&workload.as_str()))
        .flat_map(|(workload, subjects)| {
            subjects
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(move |subject| format!("{workload}/{subject}"))
        })
        .collect())
}

/// The runner's first line, its plan, for `filters` at quick scale; the runner is then
/// stopped.
fn plan(bench: &Path, filters: &[String]) -> Result<Value, String> {
    use std::io::BufRead as _;
    let mut child = Command::new(bench)
        .args(["--quick", "--rounds", "1"])
        .args(filters)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", bench.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout from the runner")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let _ = child.kill();
    let _ = child.wait();
    serde_json::from_str(&line).map_err(|error| format!("the runner's plan: {error}"))
}

fn count(bench: &Path, key: &str, repeats: usize, dir: &Path) -> Result<Counted, String> {
    let profile = dir.join(format!("{}.out", key.replace('/', "_")));
    let mut per_job = Vec::with_capacity(repeats);
    let mut jobs = 0;
    for _ in 0..repeats {
        let (short, _) = callgrind(bench, key, 1, Path::new("/dev/null"))?;
        let (long, round_jobs) = callgrind(bench, key, LONG, &profile)?;
        let extra_jobs = (LONG as u64 - 1) * round_jobs;
        if long <= short || extra_jobs == 0 {
            return Err(format!(
                "{key}: {LONG} rounds counted {long} instructions, 1 round {short}: nothing to divide"
            ));
        }
        jobs = round_jobs;
        per_job.push((long - short) as f64 / extra_jobs as f64);
    }
    let (median, spread) = median_and_spread(per_job);
    Ok(Counted {
        key: key.to_owned(),
        jobs,
        per_job: median,
        spread,
        profile,
    })
}

/// The median of `counts` (not empty) and their spread: highest less lowest, over it.
fn median_and_spread(mut counts: Vec<f64>) -> (f64, f64) {
    counts.sort_by(f64::total_cmp);
    let median = counts[counts.len() / 2];
    let spread = (counts[counts.len() - 1] - counts[0]) / median;
    (median, spread)
}

/// Runs `key` alone for `rounds` rounds under callgrind: the instructions it counted and the
/// jobs in one round.
fn callgrind(bench: &Path, key: &str, rounds: usize, out: &Path) -> Result<(u64, u64), String> {
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(bench)
        .args([
            "--quick",
            "--rounds",
            &rounds.to_string(),
            &format!("={key}"),
        ])
        .output()
        .map_err(|error| format!("cannot run valgrind: {error}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{key} under callgrind failed:\n{stderr}"));
    }
    let instructions = collected(&stderr)
        .ok_or_else(|| format!("{key}: callgrind printed no count:\n{stderr}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let plan: Value = stdout
        .lines()
        .next()
        .and_then(|line| serde_json::from_str(line).ok())
        .ok_or_else(|| format!("{key}: the runner printed no plan"))?;
    let workload = key.split('/').next().unwrap_or_default();
    let jobs = plan["sizes"][workload]["jobs"]
        .as_u64()
        .ok_or_else(|| format!("{key}: the plan gives no job count"))?;
    Ok((instructions, jobs))
}

/// The instructions callgrind's summary says it collected (`==PID== Collected : N`).
fn collected(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|line| line.split_once("Collected :"))
        .and_then(|(_, count)| count.trim().parse().ok())
}

fn markdown(counted_on: &str, counted: &[Counted]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Instructions per job (callgrind)\n\n{counted_on} \
         `brigade-bench --quick` under `valgrind --tool=callgrind`, {LONG} rounds less 1 round, \
         over the extra rounds' jobs, the median of the repeats: every thread's \
         instructions (submitter, workers, spinning included), none of the time threads \
         cost each other. Compare builds with it, and the ratios with the timed report's; \
         a spread past a few percent is spinning that callgrind's thread switches drew \
         out, and wants more repeats.\n"
    );
    let _ = writeln!(
        out,
        "| measurement | jobs per round | instructions per job | spread |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
    for entry in counted {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.1}% |",
            entry.key,
            entry.jobs,
            entry.per_job,
            entry.spread * 100.0
        );
    }
    let per_job = |key: &str| {
        counted
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| entry.per_job)
    };
    let rows: Vec<String> = RATIOS
        .iter()
        .filter_map(|&(what, top, bottom)| {
            let ratio = per_job(top)? / per_job(bottom)?;
            Some(format!("| {what} | {ratio:.2} |"))
        })
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(out, "\n| ratio of instructions per job | ratio |");
        let _ = writeln!(out, "| --- | ---: |");
        for row in rows {
            let _ = writeln!(out, "{row}");
        }
    }
    let _ = writeln!(
        out,
        "\nProfiles of the {LONG}-round runs: `callgrind_annotate {}`.",
        counted
            .first()
            .map_or_else(String::new, |entry| entry.profile.display().to_string())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_count_callgrind_collected() {
        let stderr = "==7== Events    : Ir\n==7== Collected : 27895515\n==7==\n==7== I   refs:      27,895,515\n";
        assert_eq!(collected(stderr), Some(27_895_515));
        assert_eq!(collected("==7== error: no such file\n"), None);
    }

    #[test]
    fn keeps_the_median_of_the_repeats() {
        let (median, spread) = median_and_spread(vec![1_545.0, 1_436.0, 1_428.0]);
        assert_eq!(median, 1_436.0);
        assert!((spread - 117.0 / 1_436.0).abs() < 1e-12);
        assert_eq!(median_and_spread(vec![960.0]), (960.0, 0.0));
    }

    #[test]
    fn takes_repeats_and_filters() {
        let args = |list: &[&str]| list.iter().map(|&a| a.to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse(args(&["--repeats", "5", "=noop/crossbeam-pool"])),
            Ok((5, args(&["=noop/crossbeam-pool"])))
        );
        assert_eq!(parse(args(&[])), Ok((3, args(&["noop/", "middleware/"]))));
        assert!(parse(args(&["--repeats", "0"])).is_err());
        assert!(parse(args(&["--repeat"])).is_err());
    }

    #[test]
    fn shows_the_ratios_whose_both_sides_were_counted() {
        let entry = |key: &str, per_job| Counted {
            key: key.to_owned(),
            jobs: 20_000,
            per_job,
            spread: 0.01,
            profile: PathBuf::from("p.out"),
        };
        let table = markdown(
            "Counted here.",
            &[
                entry("noop/brigade-thread/execute", 1_000.0),
                entry("noop/crossbeam-pool", 500.0),
                entry("noop/brigade-thread", 1_500.0),
            ],
        );
        assert!(
            table.contains("| noop/crossbeam-pool | 20000 | 500 |"),
            "{table}"
        );
        assert!(
            table.contains("| thread execute / crossbeam-pool | 2.00 |"),
            "{table}"
        );
        assert!(
            table.contains("| thread submit+join / crossbeam-pool | 3.00 |"),
            "{table}"
        );
        assert!(
            !table.contains("threadpool"),
            "no ratio without its peer: {table}"
        );
    }
}
