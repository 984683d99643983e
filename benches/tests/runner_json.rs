//! The runner's output is the xtask's input: check its event stream end to end on a tiny
//! filtered run.

use std::process::Command;

use serde_json::Value;

fn events(args: &[&str]) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_brigade-bench"))
        .args(args)
        .output()
        .expect("runner starts");
    assert!(
        output.status.success(),
        "runner failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn plan_then_one_sample_per_subject_and_round_then_done() {
    let events = events(&[
        "--quick",
        "--rounds",
        "2",
        "noop/crossbeam",
        "noop/threadpool",
    ]);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"plan"));
    assert_eq!(kinds.last(), Some(&"done"));
    assert_eq!(events[0]["total"], 4);
    let samples: Vec<&Value> = events.iter().filter(|e| e["event"] == "sample").collect();
    assert_eq!(samples.len(), 4);
    // Interleaved, in alternating order: A B, then B A.
    let order: Vec<&str> = samples
        .iter()
        .map(|s| s["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "crossbeam-pool",
            "threadpool",
            "threadpool",
            "crossbeam-pool"
        ]
    );
    assert!(
        samples
            .iter()
            .all(|s| s["metrics"]["seconds"].as_f64().unwrap() > 0.0)
    );
}

#[test]
fn memory_runs_in_a_child_process_and_reports_bytes_per_job() {
    let events = events(&["--quick", "--rounds", "1", "memory/crossbeam"]);
    let sample = events
        .iter()
        .find(|e| e["event"] == "sample")
        .expect("a memory sample");
    assert_eq!(sample["workload"], "memory");
    assert!(sample["metrics"]["bytes_per_job"].as_f64().unwrap() > 0.0);
    assert!(sample["metrics"]["peak_rss_mib"].as_f64().unwrap() > 0.0);
}

#[test]
fn unknown_flags_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_brigade-bench"))
        .arg("--fast")
        .output()
        .expect("runner starts");
    assert_eq!(output.status.code(), Some(2));
}
