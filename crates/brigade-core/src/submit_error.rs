use std::borrow::Cow;
use std::fmt;

/// Why a middleware refused a job at submit (a job heavier than a weighted limit, a full
/// queue under a reject policy, ...).
///
/// # Examples
///
/// ```
/// let reason = brigade_core::Rejection::new("weight 12 exceeds the limit of 10");
/// assert_eq!(reason.to_string(), "weight 12 exceeds the limit of 10");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    reason: Cow<'static, str>,
}

impl Rejection {
    /// A rejection with a reason for the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// let reason = brigade_core::Rejection::new(format!("queue full ({} jobs)", 8));
    /// assert_eq!(reason.reason(), "queue full (8 jobs)");
    /// ```
    #[must_use]
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Rejection {
            reason: reason.into(),
        }
    }

    /// The reason given.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::Rejection::new("no").reason(), "no");
    /// ```
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Writes the shared parts of the submit errors: each hands the job back, none needs
/// `J: Debug`.
macro_rules! submit_error {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $message:literal,)* }
    ) => {
        $(#[$meta])*
        pub enum $name<J> {
            $($(#[$vmeta])* $variant(J),)*
            /// A middleware refused the job; it comes back with the reason.
            Rejected(J, Rejection),
        }

        impl<J> $name<J> {
            /// Gives back the job that was refused.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let error = brigade_core::", stringify!($name), "::Rejected(7, brigade_core::Rejection::new(\"no\"));")]
            /// assert_eq!(error.into_inner(), 7);
            /// ```
            #[must_use]
            pub fn into_inner(self) -> J {
                match self {
                    $($name::$variant(job))|* | $name::Rejected(job, _) => job,
                }
            }
        }

        impl<J> fmt::Debug for $name<J> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$variant(_) => f.write_str(concat!(stringify!($variant), "(..)")),)*
                    $name::Rejected(_, reason) => write!(f, "Rejected(.., {reason:?})"),
                }
            }
        }

        impl<J> fmt::Display for $name<J> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$variant(_) => f.write_str($message),)*
                    $name::Rejected(_, reason) => write!(f, "job rejected: {reason}"),
                }
            }
        }

        impl<J> std::error::Error for $name<J> {}
    };
}

submit_error! {
    /// Why a blocking [`submit`](crate::Executor::submit) refused a job; the job comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let error = brigade_core::SubmitError::Closed("job");
    /// assert_eq!(error.to_string(), "pool is shut down");
    /// assert_eq!(error.into_inner(), "job");
    /// ```
    SubmitError {
        /// The pool is shutting down or shut down.
        Closed => "pool is shut down",
        /// A blocking submit was called on a thread that drives a current-thread async
        /// runtime: waiting there would stall the tasks that make room. Await the async
        /// submit instead.
        InAsyncContext => "blocking submit called inside a current-thread async runtime: await the async submit",
    }
}

submit_error! {
    /// Why [`try_submit`](crate::Executor::try_submit) refused a job; the job comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let error = brigade_core::TrySubmitError::Full("job");
    /// assert_eq!(error.to_string(), "queue is full");
    /// assert_eq!(error.into_inner(), "job");
    /// ```
    TrySubmitError {
        /// The queue is at capacity.
        Full => "queue is full",
        /// The pool is shutting down or shut down.
        Closed => "pool is shut down",
    }
}

submit_error! {
    /// Why [`submit_timeout`](crate::Executor::submit_timeout) refused a job; the job comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let error = brigade_core::SubmitTimeoutError::Timeout("job");
    /// assert_eq!(error.to_string(), "queue stayed full until the timeout");
    /// ```
    SubmitTimeoutError {
        /// The queue stayed full for the whole timeout.
        Timeout => "queue stayed full until the timeout",
        /// The pool is shutting down or shut down.
        Closed => "pool is shut down",
        /// A blocking submit was called on a thread that drives a current-thread async
        /// runtime: waiting there would stall the tasks that make room. Await the async
        /// submit instead.
        InAsyncContext => "blocking submit called inside a current-thread async runtime: await the async submit",
    }
}

impl<J> TrySubmitError<J> {
    /// Whether the queue was full (the job may be offered again later).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::TrySubmitError::Full(()).is_full());
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, TrySubmitError::Full(_))
    }
}
