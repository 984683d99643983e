//! `cargo xtask chaos`: builds `brigade-chaos` in release mode and runs its `run`
//! command with the arguments given, writing the ledgers under the target directory.

use std::process::Command;

pub(crate) fn run(args: Vec<String>) -> Result<(), String> {
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!("{}", crate::USAGE);
        return Ok(());
    }
    let mut command = Command::new(crate::cargo());
    command.current_dir(crate::workspace_root()).args([
        "run",
        "--release",
        "--quiet",
        "--package",
        "brigade-chaos",
        "--bin",
        "brigade-chaos",
        "--",
        "run",
    ]);
    if !args.iter().any(|arg| arg == "--out") {
        command
            .arg("--out")
            .arg(crate::target_dir().join("brigade-chaos"));
    }
    let status = command
        .args(&args)
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the fault harness failed ({status}); its table says which check"
        ))
    }
}
