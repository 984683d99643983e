//! What a worker host is running now, read from its ledger as it grows: the faults aim at
//! work by it. Each read takes only the bytes appended since the last one, so polling every
//! few milliseconds costs little however long the run.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::ledger::Line;

/// A run started and not ended, by its ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpenRun {
    /// The worker incarnation, `w2#3`.
    pub(crate) process: String,
    /// When its `start` line was written (ledger µs).
    pub(crate) start: u64,
    /// When its work would end if nothing stopped it: `start` + its `work_ms`.
    pub(crate) planned_end: u64,
    /// The job fails this attempt on purpose: its end is a retry, which a worker that knows
    /// its lease lost withholds, where a success always sends its ack.
    pub(crate) fails: bool,
}

impl OpenRun {
    /// How long its work still has to go at `now` (µs), zero if it is due.
    pub(crate) fn left_at(&self, now: u64) -> u64 {
        self.planned_end.saturating_sub(now)
    }
}

/// One worker host's ledger, followed.
#[derive(Debug)]
pub(crate) struct OpenRuns {
    path: PathBuf,
    read_to: u64,
    /// Bytes after the last newline read: a line still being written.
    partial: Vec<u8>,
    /// By job, attempt and incarnation, as the checker keys runs.
    open: BTreeMap<(u64, u64, String), OpenRun>,
}

impl OpenRuns {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            read_to: 0,
            partial: Vec::new(),
            open: BTreeMap::new(),
        }
    }

    /// The runs of `process` open now. Poison runs are left out: they end their process on
    /// their first line, so there is nothing of them for a fault to interrupt.
    pub(crate) fn of(&mut self, process: &str) -> Vec<OpenRun> {
        self.catch_up();
        self.open
            .values()
            .filter(|run| run.process == process)
            .cloned()
            .collect()
    }

    /// Reads what was appended since the last call. A ledger that cannot be read now is
    /// tried again on the next call.
    fn catch_up(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.read_to)).is_err() {
            return;
        }
        let mut fresh = Vec::new();
        let Ok(read) = file.read_to_end(&mut fresh) else {
            return;
        };
        self.read_to += read as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(last_newline) = self.partial.iter().rposition(|&byte| byte == b'\n') else {
            return;
        };
        let rest = self.partial.split_off(last_newline + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        for text in String::from_utf8_lossy(&whole).lines() {
            if let Some(line) = Line::parse(text) {
                self.apply(&line);
            }
        }
    }

    fn apply(&mut self, line: &Line) {
        let (Some(job), Some(attempt), Some(process)) = (
            line.number("job"),
            line.number("attempt"),
            line.text("worker"),
        ) else {
            return;
        };
        let key = (job, attempt, process.to_owned());
        match line.kind.as_str() {
            "start" if line.number("poison") != Some(1) => {
                let work_us = line.number("work_ms").unwrap_or(0).saturating_mul(1000);
                self.open.insert(
                    key,
                    OpenRun {
                        process: process.to_owned(),
                        start: line.t,
                        planned_end: line.t.saturating_add(work_us),
                        fails: attempt <= line.number("fails").unwrap_or(0),
                    },
                );
            }
            "done" | "failed" | "cancelled" => {
                self.open.remove(&key);
            }
            _ => {}
        }
    }

    /// Forgets the runs of incarnations other than `process` (they died with theirs).
    pub(crate) fn keep_only(&mut self, process: &str) {
        self.open.retain(|_, run| run.process == process);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LedgerWriter;

    #[test]
    fn follows_a_growing_ledger() {
        let dir = std::env::temp_dir().join(format!("brigade-chaos-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("w1.log");
        let _ = std::fs::remove_file(&path);
        let ledger = LedgerWriter::open(&path).expect("open");
        let mut runs = OpenRuns::new(path.clone());
        assert!(runs.of("w1#1").is_empty(), "no file content yet");
        let start = |job: u64, work_ms: u32, poison: u8| {
            ledger.record(
                "start",
                &[
                    ("job", job.to_string()),
                    ("n", job.to_string()),
                    ("attempt", "1".into()),
                    ("worker", "w1#1".into()),
                    ("poison", poison.to_string()),
                    ("fails", u32::from(job == 2).to_string()),
                    ("work_ms", work_ms.to_string()),
                ],
            )
        };
        let t = start(1, 4000, 0);
        start(2, 20, 0);
        start(3, 0, 1);
        let open = runs.of("w1#1");
        assert_eq!(open.len(), 2, "the poison run is left out: {open:?}");
        assert_eq!(open[0].planned_end, t + 4_000_000);
        assert_eq!(
            open.iter().map(|run| run.fails).collect::<Vec<_>>(),
            [false, true],
            "job 2 fails its first attempt on purpose"
        );
        ledger.record(
            "done",
            &[
                ("job", "2".into()),
                ("n", "2".into()),
                ("attempt", "1".into()),
                ("worker", "w1#1".into()),
            ],
        );
        // A line caught half-written is read once it is whole.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, b"cancelled t=9 job=1"))
            .expect("append");
        assert_eq!(runs.of("w1#1").len(), 1);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, b" n=1 attempt=1 worker=w1#1\n")
            })
            .expect("append");
        assert!(runs.of("w1#1").is_empty());
        assert!(runs.of("w1#2").is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
