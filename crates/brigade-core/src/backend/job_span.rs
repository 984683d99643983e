//! The span every run happens in, and the one question asked before making it: is anyone
//! there to see it?

use tracing::Span;

/// The `job` span with the fields `pool`, `id` and `attempt`, or none when nobody could
/// see it.
///
/// With no `tracing` subscriber a span is disabled, but not free: where `tracing`'s `log`
/// feature is on (any crate in the build may turn it on; sqlx does), a disabled span still
/// offers its creation, entry and exit to the `log` facade, three calls and a walk over its
/// fields per job, and even [`Span::none`]'s drop asks it once. When no subscriber has ever
/// been set and `log` would drop the span's lines anyway, a run gets no span at all.
/// Whenever something listens, a subscriber or a logger at `INFO`, the span is the real
/// one.
pub(crate) fn job_span(pool: &str, id: u64, attempt: u32) -> Option<Span> {
    if !tracing::dispatcher::has_been_set() && log::max_level() < log::LevelFilter::Info {
        return None;
    }
    Some(tracing::info_span!("job", pool, id, attempt))
}
