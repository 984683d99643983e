/// A blocking pool method with no job to hand back (`wait_idle`, the shutdowns) was called
/// on a thread that drives a current-thread async runtime, where waiting would stall the
/// tasks it waits for. Nothing was done: await the async method of the same name instead.
///
/// The submits report the same case as `InAsyncContext` in their own errors
/// ([`SubmitError::InAsyncContext`](crate::SubmitError::InAsyncContext)), with the job.
///
/// # Examples
///
/// ```
/// use brigade_core::InAsyncContext;
///
/// let error = InAsyncContext;
/// assert!(error.to_string().contains("current-thread"));
/// let _: &dyn std::error::Error = &error;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InAsyncContext;

impl std::fmt::Display for InAsyncContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "blocking pool method called inside a current-thread async runtime, which it \
             would stall: await the async method of the same name",
        )
    }
}

impl std::error::Error for InAsyncContext {}
