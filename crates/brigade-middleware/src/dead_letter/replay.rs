use std::io;

use brigade_core::hooks::DeadLetter;
use brigade_core::{Executor, SubmitError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::jsonl::JsonlSink;
use super::replay_report::ReplayReport;

impl<J> JsonlSink<J>
where
    J: Serialize + DeserializeOwned + Send + 'static,
{
    /// Resubmits the job of every letter in the file to `pool`, oldest first, and removes
    /// each letter once the pool has accepted its job.
    ///
    /// Removal is crash-safe: an accepted letter gets a synced `replayed` tombstone line
    /// at once, and the file is compacted (rewritten to a temporary file, synced, renamed
    /// over the original) when the replay ends. A crash between the pool's acceptance and
    /// the tombstone replays that one letter again next time: delivery is at least once.
    ///
    /// Letters that arrive while the replay runs (a replayed job failing again into the
    /// same sink, say) stay for the next replay. `submit` waits while the pool's queue is
    /// full; a job the pool's middleware rejects stays in the file; a pool that shuts down
    /// stops the replay.
    ///
    /// # Errors
    ///
    /// Reading the file, a line that does not parse as a letter of `J`, or writing a
    /// tombstone or the compacted file. Jobs already accepted keep running.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{ErrorKind, Job, JobContext};
    /// use brigade_middleware::{DeadLetterQueue, JsonlSink};
    /// use brigade_thread::ThreadPool;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Charge { cents: u64, gateway_up: bool }
    ///
    /// impl Job for Charge {
    ///     type Output = u64;
    ///     type Error = String;
    ///     fn run(&mut self, _: &JobContext) -> Result<u64, String> {
    ///         if self.gateway_up { Ok(self.cents) } else { Err("gateway down".into()) }
    ///     }
    /// }
    ///
    /// let path = std::env::temp_dir().join(format!("brigade-replay-{}.jsonl", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let sink = JsonlSink::<Charge>::open(&path)?;
    /// let pool = ThreadPool::builder().workers(1).layer(DeadLetterQueue::new(sink.clone())).build().unwrap();
    /// let failed = pool.submit(Charge { cents: 500, gateway_up: false }).unwrap();
    /// assert_eq!(failed.join().unwrap_err().kind(), ErrorKind::DeadLettered);
    ///
    /// // The gateway is back: fix the letters' jobs (here, by hand) and replay them.
    /// # let fixed = std::fs::read_to_string(&path)?.replace("\"gateway_up\":false", "\"gateway_up\":true");
    /// # std::fs::write(&path, fixed)?;
    /// let sink = JsonlSink::<Charge>::open(&path)?;
    /// let report = sink.replay(&pool)?;
    /// assert_eq!(report.replayed.len(), 1);
    /// for handle in report.replayed {
    ///     assert_eq!(handle.join().unwrap(), 500);
    /// }
    /// assert_eq!(sink.pending(), 0);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn replay<P: Executor<J>>(
        &self,
        pool: &P,
    ) -> io::Result<ReplayReport<P::Output, P::Error>> {
        let mut report = ReplayReport::default();
        let letters = self.letters()?;
        let total = letters.len();
        for (index, stored) in letters.into_iter().enumerate() {
            let DeadLetter { job, .. } = stored.letter;
            match pool.submit(job) {
                Ok(handle) => {
                    report.replayed.push(handle);
                    self.mark_replayed(stored.seq)?;
                }
                Err(SubmitError::Rejected(_, reason)) => {
                    // The job read from the file is dropped; its letter stays on disk.
                    report.rejections.push(reason);
                    report.kept += 1;
                }
                Err(SubmitError::Closed(_)) => {
                    report.closed = true;
                    report.kept += total - index;
                    break;
                }
                Err(SubmitError::InAsyncContext(_)) => {
                    report.in_async_context = true;
                    report.kept += total - index;
                    break;
                }
            }
        }
        self.compact()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeadLetterSink, MemorySink};
    use brigade_core::backend::job_handle;
    use brigade_core::{
        CancellationToken, ConfigError, InAsyncContext, JobHandle, JobId, Rejection,
        ShutdownReport, Stats, SubmitTimeoutError, TrySubmitError,
    };
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    /// A pool that accepts `accept` jobs, then rejects odd jobs and closes on the rest.
    struct ScriptedPool {
        accept: usize,
        accepted: Mutex<Vec<u32>>,
        token: CancellationToken,
    }

    impl ScriptedPool {
        fn new(accept: usize) -> Self {
            ScriptedPool {
                accept,
                accepted: Mutex::new(Vec::new()),
                token: CancellationToken::new(),
            }
        }
    }

    impl Executor<u32> for ScriptedPool {
        type Output = ();
        type Error = String;

        fn submit(&self, job: u32) -> Result<JobHandle<(), String>, SubmitError<u32>> {
            let mut accepted = self.accepted.lock().unwrap();
            if accepted.len() < self.accept {
                accepted.push(job);
                let (handle, completer) = job_handle(JobId::new(job.into()), &self.token);
                completer.complete(Ok(()));
                Ok(handle)
            } else if job % 2 == 1 {
                Err(SubmitError::Rejected(
                    job,
                    Rejection::new("odd jobs refused"),
                ))
            } else {
                Err(SubmitError::Closed(job))
            }
        }
        fn try_submit(&self, job: u32) -> Result<JobHandle<(), String>, TrySubmitError<u32>> {
            Err(TrySubmitError::Closed(job))
        }
        fn submit_timeout(
            &self,
            job: u32,
            _: Duration,
        ) -> Result<JobHandle<(), String>, SubmitTimeoutError<u32>> {
            Err(SubmitTimeoutError::Closed(job))
        }
        fn execute(&self, job: u32) -> Result<(), SubmitError<u32>> {
            self.submit(job).map(drop)
        }
        fn stats(&self) -> Stats {
            Stats::default()
        }
        fn wait_idle(&self) -> Result<(), InAsyncContext> {
            Ok(())
        }
        fn resize(&self, _: usize, _: usize) -> Result<(), ConfigError> {
            Ok(())
        }
        fn shutdown(&self) -> Result<ShutdownReport<u32>, InAsyncContext> {
            Ok(ShutdownReport::default())
        }
        fn shutdown_timeout(&self, _: Duration) -> Result<ShutdownReport<u32>, InAsyncContext> {
            Ok(ShutdownReport::default())
        }
        fn shutdown_now(&self) -> Result<ShutdownReport<u32>, InAsyncContext> {
            Ok(ShutdownReport::default())
        }
    }

    fn letter(job: u32) -> DeadLetter<u32> {
        let now = SystemTime::now();
        DeadLetter {
            job,
            id: JobId::new(job.into()),
            error: "e".into(),
            attempts: 1,
            first_failure: now,
            last_failure: now,
        }
    }

    fn temp_path() -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("brigade-mw-replay-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn jsonl_replay_removes_only_accepted_letters() {
        let path = temp_path();
        let sink = JsonlSink::<u32>::open(&path).unwrap();
        for job in 1..=6 {
            sink.store(letter(job)).unwrap();
        }
        // Accepts 1 and 2; rejects 3 (odd); closes at 4: 4, 5, 6 stay.
        let pool = ScriptedPool::new(2);
        let report = sink.replay(&pool).unwrap();
        assert_eq!(report.replayed.len(), 2);
        assert_eq!(report.rejections.len(), 1);
        assert!(report.closed);
        assert_eq!(report.kept, 4);
        for handle in report.replayed {
            handle.join().unwrap();
        }
        assert_eq!(*pool.accepted.lock().unwrap(), [1, 2]);
        let left: Vec<_> = JsonlSink::<u32>::open(&path)
            .unwrap()
            .letters()
            .unwrap()
            .into_iter()
            .map(|s| s.letter.job)
            .collect();
        assert_eq!(left, [3, 4, 5, 6]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().count(),
            4,
            "compacted"
        );

        // A pool that takes everything empties the file.
        let report = sink.replay(&ScriptedPool::new(usize::MAX)).unwrap();
        assert_eq!((report.replayed.len(), report.kept), (4, 0));
        assert_eq!(sink.pending(), 0);
        assert!(std::fs::read(&path).unwrap().is_empty());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn memory_replay_puts_refused_letters_back_in_order() {
        let sink = MemorySink::new(10).unwrap();
        for job in 1..=5 {
            sink.store(letter(job)).unwrap();
        }
        let report = sink.replay(&ScriptedPool::new(1));
        assert_eq!(report.replayed.len(), 1);
        assert!(report.closed);
        assert_eq!(report.kept, 4);
        let left: Vec<_> = sink.drain().into_iter().map(|l| l.job).collect();
        assert_eq!(left, [2, 3, 4, 5]);
    }
}
