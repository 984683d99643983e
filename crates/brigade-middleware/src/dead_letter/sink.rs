use std::fmt;
use std::io;
use std::sync::Arc;

use brigade_core::hooks::DeadLetter;

/// Where dead letters go: a store that takes a letter or gives it back.
///
/// A sink returns `Ok` only once the letter is kept (for a durable sink: on disk and
/// synced), since the backend counts the job as dead-lettered then. A sink that cannot
/// take the letter hands it back in the error; the job then ends as failed, and nothing is
/// lost silently.
///
/// # Examples
///
/// A sink that forwards letters to a channel:
///
/// ```
/// use std::sync::mpsc;
/// use std::sync::Mutex;
/// use brigade_core::hooks::DeadLetter;
/// use brigade_middleware::{DeadLetterSink, SinkError};
///
/// struct ChannelSink(Mutex<mpsc::Sender<DeadLetter<String>>>);
///
/// impl DeadLetterSink<String> for ChannelSink {
///     fn store(&self, letter: DeadLetter<String>) -> Result<(), SinkError<String>> {
///         self.0.lock().unwrap().send(letter).map_err(|mpsc::SendError(letter)| {
///             SinkError::Io(letter, std::io::Error::other("receiver gone"))
///         })
///     }
/// }
/// # let (tx, _rx) = mpsc::channel();
/// # let _ = ChannelSink(Mutex::new(tx));
/// ```
pub trait DeadLetterSink<J>: Send + Sync + 'static {
    /// Keeps `letter`.
    ///
    /// # Errors
    ///
    /// [`SinkError`] with the letter when it could not be kept.
    fn store(&self, letter: DeadLetter<J>) -> Result<(), SinkError<J>>;
}

/// Why a sink could not keep a letter; the letter comes back inside.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use brigade_core::JobId;
/// use brigade_core::hooks::DeadLetter;
/// use brigade_middleware::SinkError;
///
/// let now = SystemTime::now();
/// let letter = DeadLetter {
///     job: 7u32, id: JobId::new(1), error: "boom".into(), attempts: 3,
///     first_failure: now, last_failure: now,
/// };
/// let error = SinkError::Full(letter);
/// assert_eq!(error.to_string(), "dead-letter sink is full");
/// assert_eq!(error.into_letter().job, 7);
/// ```
pub enum SinkError<J> {
    /// A bounded sink had no room.
    Full(DeadLetter<J>),
    /// Writing the letter failed.
    Io(DeadLetter<J>, io::Error),
}

impl<J> SinkError<J> {
    /// Gives back the letter that was not kept.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// # use brigade_core::{JobId, hooks::DeadLetter};
    /// # let now = SystemTime::now();
    /// # let letter = DeadLetter { job: 'x', id: JobId::new(1), error: String::new(), attempts: 1, first_failure: now, last_failure: now };
    /// let error = brigade_middleware::SinkError::Io(letter, std::io::Error::other("disk full"));
    /// assert_eq!(error.into_letter().job, 'x');
    /// ```
    #[must_use]
    pub fn into_letter(self) -> DeadLetter<J> {
        match self {
            SinkError::Full(letter) | SinkError::Io(letter, _) => letter,
        }
    }
}

impl<J> fmt::Debug for SinkError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkError::Full(letter) => f.debug_tuple("Full").field(letter).finish(),
            SinkError::Io(letter, error) => f.debug_tuple("Io").field(letter).field(error).finish(),
        }
    }
}

impl<J> fmt::Display for SinkError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkError::Full(_) => f.write_str("dead-letter sink is full"),
            SinkError::Io(_, error) => write!(f, "dead-letter sink could not write: {error}"),
        }
    }
}

impl<J> std::error::Error for SinkError<J> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SinkError::Full(_) => None,
            SinkError::Io(_, error) => Some(error),
        }
    }
}

/// Shared sinks: `Arc<S>` is a sink when `S` is.
impl<J, S: DeadLetterSink<J>> DeadLetterSink<J> for Arc<S> {
    fn store(&self, letter: DeadLetter<J>) -> Result<(), SinkError<J>> {
        (**self).store(letter)
    }
}
