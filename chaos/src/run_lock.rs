//! One harness run per machine at a time.
//!
//! Every run uses the same namespaces (`chaos-*`), bridge (`brchaos0`) and server ports,
//! and a run's start removes what an earlier run left: a second run started beside a live
//! one would tear the first one's network down under it. A run therefore holds a lock
//! file naming its process for its whole length; a run that finds it held by a live
//! process waits for it (bounded), and one left by a dead process is taken over.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a run waits for another to end: a full run takes about 11 minutes.
const WAIT_AT_MOST: Duration = Duration::from_secs(30 * 60);
const RECHECK: Duration = Duration::from_secs(1);
/// An empty lock file older than this was left by a run killed before it wrote its pid.
const STILL_EMPTY: Duration = Duration::from_secs(10);

/// Held for a run's length; dropping it removes the lock file.
#[derive(Debug)]
pub(crate) struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the machine's run lock, waiting up to [`WAIT_AT_MOST`] for a live run that
    /// holds it.
    pub(crate) fn take() -> Result<RunLock, String> {
        let path = std::env::temp_dir().join("brigade-chaos.lock");
        let started = Instant::now();
        let mut told = false;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id())
                        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
                    return Ok(RunLock { path });
                }
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
                Err(error) => return Err(format!("cannot create {}: {error}", path.display())),
            }
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            if !is_alive(holder) {
                // Left by a run that was killed, or not written yet (its holder is between
                // creating and writing it): taken over once it names a dead process or has
                // stayed empty for longer than a write takes.
                if !holder.is_empty() || is_older_than(&path, STILL_EMPTY) {
                    let _ = fs::remove_file(&path);
                    continue;
                }
            } else if !told {
                println!(
                    "waiting for the harness run of pid {holder} to end ({} names it): runs share the namespaces chaos-*, the bridge brchaos0 and the servers' ports",
                    path.display()
                );
                told = true;
            }
            if started.elapsed() > WAIT_AT_MOST {
                return Err(format!(
                    "another harness run (pid {holder}) held {} for {} minutes; end it, or remove the file if that pid is no harness run",
                    path.display(),
                    WAIT_AT_MOST.as_secs() / 60
                ));
            }
            std::thread::sleep(RECHECK);
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether the file at `path` was last written more than `age` ago.
fn is_older_than(path: &std::path::Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .is_ok_and(|modified| modified.elapsed().is_ok_and(|elapsed| elapsed > age))
}

/// Whether `pid` names a running process.
fn is_alive(pid: &str) -> bool {
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && fs::metadata(format!("/proc/{pid}")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_pid_is_alive_and_garbage_is_not() {
        assert!(is_alive(&std::process::id().to_string()));
        assert!(!is_alive(""));
        assert!(!is_alive("../self"));
        assert!(!is_alive("999999999"));
    }
}
