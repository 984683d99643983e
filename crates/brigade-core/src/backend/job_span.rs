//! The span every run happens in, and the one question asked before making it: is anyone
//! there to see it?

use tracing::Span;

/// Whether no `tracing` subscriber has ever been set and `log` would drop a run's span
/// lines: then a run needs no span.
///
/// With no `tracing` subscriber a span is disabled, but not free: where `tracing`'s `log`
/// feature is on (any crate in the build may turn it on; sqlx does), a disabled span still
/// offers its creation, entry and exit to the `log` facade, three calls and a walk over its
/// fields per job, and even [`Span::none`]'s drop asks it once. Whenever something
/// listens, a subscriber or a logger at `INFO`, a run gets its span.
#[inline]
pub(crate) fn nobody_listens() -> bool {
    !tracing::dispatcher::has_been_set() && log::max_level() < log::LevelFilter::Info
}

/// The `job` span with the fields `pool`, `id` and `attempt`, for a run someone may see:
/// ask [`nobody_listens`] first.
pub(crate) fn listened_job_span(pool: &str, id: u64, attempt: u32) -> Span {
    tracing::info_span!("job", pool, id, attempt)
}
