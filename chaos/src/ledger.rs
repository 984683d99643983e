//! The ledgers: one append-only text file per process, one event per line, that the
//! checker joins afterwards.
//!
//! A line is `kind t=<unix µs> key=value ...`. Files are opened with `O_APPEND` and each
//! line goes out in one `write(2)`: a process killed with SIGKILL or aborted has either
//! written a whole line or none of it, and the kernel keeps what was written (the faults
//! kill processes, never the machine, so no `fsync` is needed — and an `fsync` per line
//! would slow the runs the rate limit is meant to bind). Every process of a run shares
//! the machine's clock, namespaces included, so timestamps from different ledgers compare.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, the ledgers' clock.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// A ledger being written.
#[derive(Debug)]
pub(crate) struct LedgerWriter {
    file: Mutex<File>,
}

impl LedgerWriter {
    /// Opens `path` for appending, creating it.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| format!("ledger {}: {error}", path.display()))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Appends `kind t=now fields...` and returns the timestamp written.
    pub(crate) fn write(&self, kind: &str, fields: &[(&str, String)]) -> io::Result<u64> {
        let t = now_micros();
        let mut line = format!("{kind} t={t}");
        for (key, value) in fields {
            line.push(' ');
            line.push_str(key);
            line.push('=');
            line.push_str(value);
        }
        line.push('\n');
        // A poisoned lock only means another thread panicked mid-write; the file is fine.
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(line.as_bytes())?;
        Ok(t)
    }

    /// As [`LedgerWriter::write`], for callers that cannot do anything about a failed
    /// write but say so: a ledger that misses lines makes the checker fail loudly.
    pub(crate) fn record(&self, kind: &str, fields: &[(&str, String)]) -> u64 {
        self.write(kind, fields).unwrap_or_else(|error| {
            eprintln!("ledger write failed ({kind}): {error}");
            now_micros()
        })
    }
}

/// One parsed ledger line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) kind: String,
    pub(crate) t: u64,
    fields: BTreeMap<String, String>,
}

impl Line {
    /// Parses one line; `None` for a line that is not one (a torn tail cannot happen with
    /// one write per line, but a hand-edited file could hold anything).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let kind = words.next()?.to_owned();
        let mut fields = BTreeMap::new();
        for word in words {
            let (key, value) = word.split_once('=')?;
            fields.insert(key.to_owned(), value.to_owned());
        }
        let t = fields.remove("t")?.parse().ok()?;
        Some(Self { kind, t, fields })
    }

    /// A field as text.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// A numeric field.
    pub(crate) fn number(&self, key: &str) -> Option<u64> {
        self.text(key)?.parse().ok()
    }
}

/// Every line of the ledger at `path`, in order; unreadable lines are counted in the second
/// value.
pub(crate) fn read(path: &Path) -> Result<(Vec<Line>, usize), String> {
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut lines = Vec::new();
    let mut bad = 0;
    for raw in text.lines().filter(|raw| !raw.trim().is_empty()) {
        match Line::parse(raw) {
            Some(line) => lines.push(line),
            None => bad += 1,
        }
    }
    Ok((lines, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let dir = std::env::temp_dir().join(format!("brigade-chaos-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("l.log");
        let ledger = LedgerWriter::open(&path).expect("open");
        let t = ledger
            .write("start", &[("job", "7".into()), ("worker", "w1#2".into())])
            .expect("write");
        let (lines, bad) = read(&path).expect("read");
        assert_eq!(bad, 0);
        assert_eq!(lines[0].kind, "start");
        assert_eq!(lines[0].t, t);
        assert_eq!(lines[0].number("job"), Some(7));
        assert_eq!(lines[0].text("worker"), Some("w1#2"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refuses_lines_without_a_time() {
        assert!(Line::parse("start job=1").is_none());
        assert!(Line::parse("start t=x").is_none());
    }
}
