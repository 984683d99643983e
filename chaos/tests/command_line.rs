//! The harness's command line as a user meets it: help on request, and a bad invocation
//! refused with exit code 2 and the usage, before anything is started.

use std::process::Command;

fn chaos(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_brigade-chaos"))
        .args(args)
        .output()
        .expect("the harness binary runs")
}

#[test]
fn help_prints_the_usage() {
    let output = chaos(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let usage = String::from_utf8_lossy(&output.stdout);
    assert!(usage.contains("usage: brigade-chaos run"), "{usage}");
}

#[test]
fn a_bad_invocation_is_refused_with_the_usage() {
    for args in [
        &["explode"][..],
        &["run", "--workers", "9"],
        &["run", "--redis-fsync", "everysec"],
        &["run", "--redis-fsync", "always"],
    ] {
        let output = chaos(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains("usage: brigade-chaos"),
            "{args:?}: {stderr}"
        );
    }
}
