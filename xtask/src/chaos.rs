//! `cargo xtask chaos`: builds `brigade-chaos` in release mode (or takes it from
//! `$BRIGADE_RUNNERS`) and runs its `run` command with the arguments given, writing the
//! ledgers under the target directory.

pub(crate) fn run(args: Vec<String>) -> Result<(), String> {
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!("{}", crate::USAGE);
        println!(
            "\nchaos also takes --store postgres|redis|sqlite, --redis-fsync always|everysec and \
             --allow-no-netns\n(a PostgreSQL or Redis run without namespaces is refused unless \
             --allow-no-netns: it would skip the link-down fault);\n`brigade-chaos --help` \
             describes them, docs/durable-chaos.md what each check holds."
        );
        return Ok(());
    }
    let mut command = crate::runner("brigade-chaos", "brigade-chaos", &[]);
    command.current_dir(crate::workspace_root()).arg("run");
    if !args.iter().any(|arg| arg == "--out") {
        command
            .arg("--out")
            .arg(crate::target_dir().join("brigade-chaos"));
    }
    let status = command
        .args(&args)
        .status()
        .map_err(|error| format!("cannot run the fault harness: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the fault harness failed ({status}); its table says which check, or the error above why it did not run"
        ))
    }
}
