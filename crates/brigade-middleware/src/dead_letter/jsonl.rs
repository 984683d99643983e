use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use brigade_core::JobId;
use brigade_core::hooks::DeadLetter;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use super::sink::{DeadLetterSink, SinkError};

/// A durable dead-letter sink: one JSON object per line in a file, for jobs that
/// serialize with serde.
///
/// - **Durable**: [`store`](DeadLetterSink::store) returns only after the line is written
///   and synced to disk (`fsync`), so a job counts as dead-lettered only once it would
///   survive a crash. A write that fails is cut off the file again and the letter given
///   back (the job then ends as failed).
/// - **Crash-tolerant**: [`open`](Self::open) repairs a torn last line (a crash mid-write
///   leaves a line without its newline) by truncating it; a damaged line elsewhere is an
///   error, never skipped silently.
/// - **Replayable**: [`replay`](Self::replay) resubmits the letters to a pool, removing
///   each once the pool accepted it, through synced tombstone lines and a compaction by
///   atomic rename.
///
/// Lines look like
/// `{"letter":{"seq":1,"id":7,"error":"…","attempts":3,"first_failure":{…},"last_failure":{…},"job":…}}`
/// and, once replayed, `{"replayed":{"seq":1}}`.
///
/// A cheap cloneable handle; one file should have one `JsonlSink` (clones of it are fine)
/// at a time.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use brigade_core::JobId;
/// use brigade_core::hooks::DeadLetter;
/// use brigade_middleware::{DeadLetterSink, JsonlSink};
///
/// let path = std::env::temp_dir().join(format!("brigade-doc-{}.jsonl", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let sink = JsonlSink::<String>::open(&path)?;
/// let now = SystemTime::now();
/// sink.store(DeadLetter {
///     job: "task-3".to_string(), id: JobId::new(3), error: "random processing error".into(),
///     attempts: 3, first_failure: now, last_failure: now,
/// }).expect("written and synced");
///
/// // After a restart the letter is still there.
/// let reopened = JsonlSink::<String>::open(&path)?;
/// let letters = reopened.letters()?;
/// assert_eq!(letters[0].letter.job, "task-3");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JsonlSink<J> {
    inner: Arc<Mutex<FileState>>,
    path: Arc<Path>,
    repaired_bytes: u64,
    // `fn() -> J`: the sink stores no `J`, so it is Send and Sync whatever `J` is.
    _job: PhantomData<fn() -> J>,
}

struct FileState {
    file: File,
    /// Bytes of whole lines in the file: a failed write is cut back to it.
    len: u64,
    next_seq: u64,
    pending: usize,
}

/// A letter read back from a [`JsonlSink`], with its sequence number in the file.
///
/// # Examples
///
/// ```
/// # use std::time::SystemTime;
/// # use brigade_core::{JobId, hooks::DeadLetter};
/// # let now = SystemTime::now();
/// let stored = brigade_middleware::StoredLetter {
///     seq: 1,
///     letter: DeadLetter { job: (), id: JobId::new(1), error: "e".into(), attempts: 1, first_failure: now, last_failure: now },
/// };
/// assert_eq!(stored.seq, 1);
/// ```
#[derive(Debug)]
pub struct StoredLetter<J> {
    /// Its sequence number in the file, from 1.
    pub seq: u64,
    /// The letter.
    pub letter: DeadLetter<J>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LineOut<'a, J> {
    Letter(LetterOut<'a, J>),
    Replayed { seq: u64 },
}

#[derive(Serialize)]
struct LetterOut<'a, J> {
    seq: u64,
    id: u64,
    error: &'a str,
    attempts: u32,
    first_failure: SystemTime,
    last_failure: SystemTime,
    job: &'a J,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineIn<J> {
    Letter(LetterIn<J>),
    Replayed { seq: u64 },
}

#[derive(Deserialize)]
struct LetterIn<J> {
    seq: u64,
    id: u64,
    error: String,
    attempts: u32,
    first_failure: SystemTime,
    last_failure: SystemTime,
    job: J,
}

impl<J> JsonlSink<J> {
    /// Opens (or creates) the file at `path`, repairing a torn last line.
    ///
    /// # Errors
    ///
    /// The file cannot be opened, read, repaired or synced; a complete line that is not a
    /// letter or a tombstone ([`io::ErrorKind::InvalidData`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("brigade-open-{}.jsonl", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let sink = brigade_middleware::JsonlSink::<u32>::open(&path)?;
    /// assert_eq!(sink.pending(), 0);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        if !existed {
            sync_parent(path)?;
        }
        let content = fs::read(path)?;
        let whole = content
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |last| last + 1);
        let repaired_bytes = (content.len() - whole) as u64;
        if repaired_bytes > 0 {
            // A crash mid-append left a line without its newline: that letter was never
            // acknowledged (store syncs before it returns), so dropping it loses nothing.
            file.set_len(whole as u64)?;
            file.sync_data()?;
        }
        let scan = scan::<IgnoredAny>(&content[..whole], path)?;
        let pending = scan.letters.len() - scan.replayed_count();
        let state = FileState {
            file,
            len: whole as u64,
            next_seq: scan.max_seq + 1,
            pending,
        };
        Ok(JsonlSink {
            inner: Arc::new(Mutex::new(state)),
            path: Arc::from(path),
            repaired_bytes,
            _job: PhantomData,
        })
    }

    fn state(&self) -> MutexGuard<'_, FileState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file's path.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("brigade-path-{}.jsonl", std::process::id()));
    /// let sink = brigade_middleware::JsonlSink::<u32>::open(&path)?;
    /// assert_eq!(sink.path(), path);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Letters in the file not yet replayed.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("brigade-pending-{}.jsonl", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// assert_eq!(brigade_middleware::JsonlSink::<u32>::open(&path)?.pending(), 0);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn pending(&self) -> usize {
        self.state().pending
    }

    /// Bytes of a torn last line that [`open`](Self::open) cut off (0 after a clean stop).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("brigade-torn-{}.jsonl", std::process::id()));
    /// std::fs::write(&path, "{\"letter\":{\"seq\":1,\"id")?; // a crash mid-write
    /// let sink = brigade_middleware::JsonlSink::<u32>::open(&path)?;
    /// assert_eq!(sink.repaired_bytes(), 22);
    /// assert_eq!(sink.pending(), 0);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn repaired_bytes(&self) -> u64 {
        self.repaired_bytes
    }

    /// Appends a synced tombstone for letter `seq`: it will not be read or replayed again.
    ///
    /// # Errors
    ///
    /// Writing or syncing the file.
    pub(crate) fn mark_replayed(&self, seq: u64) -> io::Result<()> {
        let tombstone: LineOut<'_, ()> = LineOut::Replayed { seq };
        let mut line = serde_json::to_vec(&tombstone).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut state = self.state();
        append(&mut state, &line)?;
        state.pending = state.pending.saturating_sub(1);
        Ok(())
    }

    /// Rewrites the file without replayed letters and their tombstones: to a temporary
    /// file beside it, synced, then renamed over it (atomic on POSIX file systems), and
    /// the directory synced.
    ///
    /// # Errors
    ///
    /// Reading, writing, syncing or renaming; the original file is intact then.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("brigade-compact-{}.jsonl", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let sink = brigade_middleware::JsonlSink::<u32>::open(&path)?;
    /// sink.compact()?;
    /// assert_eq!(std::fs::read(&path)?.len(), 0);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn compact(&self) -> io::Result<()> {
        let mut state = self.state();
        let content = fs::read(&*self.path)?;
        let content = &content[..usize::try_from(state.len)
            .unwrap_or(content.len())
            .min(content.len())];
        let scan = scan::<IgnoredAny>(content, &self.path)?;
        let mut kept = Vec::with_capacity(content.len());
        for (seq, line) in &scan.letters {
            if !scan.replayed.contains(seq) {
                kept.extend_from_slice(line);
                kept.push(b'\n');
            }
        }
        let mut temporary = self.path.as_os_str().to_owned();
        temporary.push(".compact");
        let temporary = PathBuf::from(temporary);
        {
            let mut out = File::create(&temporary)?;
            out.write_all(&kept)?;
            out.sync_all()?;
        }
        fs::rename(&temporary, &*self.path)?;
        sync_parent(&self.path)?;
        state.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&*self.path)?;
        state.len = kept.len() as u64;
        state.pending = scan.letters.len() - scan.replayed_count();
        Ok(())
    }
}

impl<J: DeserializeOwned> JsonlSink<J> {
    /// Reads the letters not yet replayed, oldest first.
    ///
    /// # Errors
    ///
    /// Reading the file, or a line that does not parse as a letter of `J`
    /// ([`io::ErrorKind::InvalidData`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("brigade-letters-{}.jsonl", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let sink = brigade_middleware::JsonlSink::<u32>::open(&path)?;
    /// assert!(sink.letters()?.is_empty());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn letters(&self) -> io::Result<Vec<StoredLetter<J>>> {
        let state = self.state();
        let content = fs::read(&*self.path)?;
        let content = &content[..usize::try_from(state.len)
            .unwrap_or(content.len())
            .min(content.len())];
        drop(state);
        let scan = scan::<J>(content, &self.path)?;
        Ok(scan
            .parsed
            .into_iter()
            .filter(|letter| !scan.replayed.contains(&letter.seq))
            .map(|letter| StoredLetter {
                seq: letter.seq,
                letter: DeadLetter {
                    job: letter.job,
                    id: JobId::new(letter.id),
                    error: letter.error,
                    attempts: letter.attempts,
                    first_failure: letter.first_failure,
                    last_failure: letter.last_failure,
                },
            })
            .collect())
    }
}

impl<J: Serialize + Send + 'static> DeadLetterSink<J> for JsonlSink<J> {
    fn store(&self, letter: DeadLetter<J>) -> Result<(), SinkError<J>> {
        let mut state = self.state();
        let seq = state.next_seq;
        let line = LineOut::Letter(LetterOut {
            seq,
            id: letter.id.get(),
            error: &letter.error,
            attempts: letter.attempts,
            first_failure: letter.first_failure,
            last_failure: letter.last_failure,
            job: &letter.job,
        });
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(bytes) => bytes,
            Err(error) => {
                drop(state);
                return Err(SinkError::Io(
                    letter,
                    io::Error::new(io::ErrorKind::InvalidData, error),
                ));
            }
        };
        bytes.push(b'\n');
        match append(&mut state, &bytes) {
            Ok(()) => {
                state.next_seq += 1;
                state.pending += 1;
                Ok(())
            }
            Err(error) => {
                drop(state);
                Err(SinkError::Io(letter, error))
            }
        }
    }
}

/// Appends whole `line` and syncs; on failure cuts the file back to its last whole line
/// so later appends do not follow a fragment.
fn append(state: &mut FileState, line: &[u8]) -> io::Result<()> {
    let written = state
        .file
        .write_all(line)
        .and_then(|()| state.file.flush())
        .and_then(|()| state.file.sync_data());
    match written {
        Ok(()) => {
            state.len += line.len() as u64;
            Ok(())
        }
        Err(error) => {
            let _ = state.file.set_len(state.len);
            Err(error)
        }
    }
}

/// Syncs the directory holding `path`, so a created or renamed file's name is durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // Directories cannot be opened for syncing on every platform (Windows); the data
    // itself is synced regardless.
    match File::open(parent) {
        Ok(directory) => directory.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

struct Scan<J> {
    /// Every letter line: its seq and raw bytes (without the newline).
    letters: Vec<(u64, Vec<u8>)>,
    parsed: Vec<LetterIn<J>>,
    replayed: HashSet<u64>,
    max_seq: u64,
}

impl<J> Scan<J> {
    fn replayed_count(&self) -> usize {
        self.letters
            .iter()
            .filter(|(seq, _)| self.replayed.contains(seq))
            .count()
    }
}

/// Parses whole lines; `J = IgnoredAny` checks the structure without building jobs.
fn scan<J: DeserializeOwned>(content: &[u8], path: &Path) -> io::Result<Scan<J>> {
    let mut scan = Scan {
        letters: Vec::new(),
        parsed: Vec::new(),
        replayed: HashSet::new(),
        max_seq: 0,
    };
    for (index, line) in content.split(|&byte| byte == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let parsed: LineIn<J> = serde_json::from_slice(line).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: line {}: {error}", path.display(), index + 1),
            )
        })?;
        match parsed {
            LineIn::Letter(letter) => {
                scan.max_seq = scan.max_seq.max(letter.seq);
                scan.letters.push((letter.seq, line.to_vec()));
                scan.parsed.push(letter);
            }
            LineIn::Replayed { seq } => {
                scan.replayed.insert(seq);
            }
        }
    }
    Ok(scan)
}

impl<J> Clone for JsonlSink<J> {
    fn clone(&self) -> Self {
        JsonlSink {
            inner: Arc::clone(&self.inner),
            path: Arc::clone(&self.path),
            repaired_bytes: self.repaired_bytes,
            _job: PhantomData,
        }
    }
}

impl<J> fmt::Debug for JsonlSink<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlSink")
            .field("path", &self.path)
            .field("repaired_bytes", &self.repaired_bytes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Email {
        to: String,
        attempt_budget: u8,
    }

    pub(crate) fn temp_path(name: &str) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "brigade-mw-{}-{}-{name}.jsonl",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_file(&path);
        path
    }

    pub(crate) fn letter<J>(job: J, id: u64) -> DeadLetter<J> {
        let now = SystemTime::now();
        DeadLetter {
            job,
            id: JobId::new(id),
            error: format!("failure of #{id}"),
            attempts: 3,
            first_failure: now,
            last_failure: now,
        }
    }

    fn email(n: u32) -> Email {
        Email {
            to: format!("user{n}@example.com"),
            attempt_budget: 3,
        }
    }

    #[test]
    fn letters_survive_a_reopen_intact() {
        let path = temp_path("reopen");
        let sink = JsonlSink::<Email>::open(&path).unwrap();
        for n in 1..=3 {
            sink.store(letter(email(n), u64::from(n))).unwrap();
        }
        drop(sink);
        let reopened = JsonlSink::<Email>::open(&path).unwrap();
        assert_eq!(reopened.pending(), 3);
        let letters = reopened.letters().unwrap();
        let jobs: Vec<_> = letters
            .iter()
            .map(|stored| stored.letter.job.clone())
            .collect();
        assert_eq!(jobs, vec![email(1), email(2), email(3)]);
        assert_eq!(letters[1].letter.error, "failure of #2");
        assert_eq!(letters[1].letter.attempts, 3);
        assert_eq!(letters.iter().map(|s| s.seq).collect::<Vec<_>>(), [1, 2, 3]);
        // New letters continue the numbering.
        reopened.store(letter(email(4), 4)).unwrap();
        assert_eq!(reopened.letters().unwrap()[3].seq, 4);
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_file_stays_usable() {
        let path = temp_path("torn");
        let sink = JsonlSink::<Email>::open(&path).unwrap();
        sink.store(letter(email(1), 1)).unwrap();
        drop(sink);
        // A crash in the middle of the second append.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"letter":{"seq":2,"id":2,"error":"fail"#)
            .unwrap();
        drop(file);

        let reopened = JsonlSink::<Email>::open(&path).unwrap();
        assert!(reopened.repaired_bytes() > 0);
        assert_eq!(reopened.pending(), 1);
        reopened.store(letter(email(3), 3)).unwrap();
        let jobs: Vec<_> = reopened
            .letters()
            .unwrap()
            .into_iter()
            .map(|s| s.letter.job)
            .collect();
        assert_eq!(jobs, vec![email(1), email(3)]);
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_damaged_line_in_the_middle_is_an_error_not_a_silent_skip() {
        let path = temp_path("damaged");
        let sink = JsonlSink::<Email>::open(&path).unwrap();
        sink.store(letter(email(1), 1)).unwrap();
        drop(sink);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"not json\n").unwrap();
        drop(file);
        let error = JsonlSink::<Email>::open(&path).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("line 2"), "{error}");
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_job_that_does_not_serialize_comes_back() {
        use std::collections::HashMap;
        // JSON object keys must be strings: a map keyed by tuples cannot be written.
        let path = temp_path("unserializable");
        let sink = JsonlSink::<HashMap<(u8, u8), u8>>::open(&path).unwrap();
        let job = HashMap::from([((1, 2), 3)]);
        let error = sink.store(letter(job.clone(), 1)).unwrap_err();
        assert!(matches!(error, SinkError::Io(_, ref e) if e.kind() == io::ErrorKind::InvalidData));
        assert_eq!(error.into_letter().job, job);
        assert_eq!(sink.pending(), 0);
        assert_eq!(fs::read(&path).unwrap().len(), 0, "nothing half-written");
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn tombstones_hide_letters_and_compaction_removes_them() {
        let path = temp_path("compact");
        let sink = JsonlSink::<u32>::open(&path).unwrap();
        for n in 1..=4 {
            sink.store(letter(n, u64::from(n))).unwrap();
        }
        sink.mark_replayed(2).unwrap();
        sink.mark_replayed(4).unwrap();
        assert_eq!(sink.pending(), 2);
        // A crash before compaction: the tombstones alone keep the replayed letters out.
        let reopened = JsonlSink::<u32>::open(&path).unwrap();
        assert_eq!(reopened.pending(), 2);
        let jobs: Vec<_> = reopened
            .letters()
            .unwrap()
            .into_iter()
            .map(|s| s.letter.job)
            .collect();
        assert_eq!(jobs, [1, 3]);
        reopened.compact().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains("replayed"));
        reopened.store(letter(5, 5)).unwrap();
        let jobs: Vec<_> = JsonlSink::<u32>::open(&path)
            .unwrap()
            .letters()
            .unwrap()
            .into_iter()
            .map(|s| s.letter.job)
            .collect();
        assert_eq!(jobs, [1, 3, 5]);
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn concurrent_stores_write_whole_lines() {
        let path = temp_path("concurrent");
        let sink = JsonlSink::<u64>::open(&path).unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let sink = sink.clone();
                scope.spawn(move || {
                    for n in 0..25 {
                        sink.store(letter(thread * 100 + n, n)).unwrap();
                    }
                });
            }
        });
        let reopened = JsonlSink::<u64>::open(&path).unwrap();
        assert_eq!(reopened.repaired_bytes(), 0);
        let mut jobs: Vec<_> = reopened
            .letters()
            .unwrap()
            .into_iter()
            .map(|s| s.letter.job)
            .collect();
        jobs.sort_unstable();
        let expected: Vec<u64> = (0..4)
            .flat_map(|t| (0..25).map(move |n| t * 100 + n))
            .collect();
        assert_eq!(jobs, expected);
        fs::remove_file(&path).unwrap();
    }
}
