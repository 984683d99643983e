//! apalis's side, one backend per engine, each set up as its README sets it up: a fetch
//! batch equal to the concurrency (the docs: larger batches improve throughput; the
//! default 10 would leave 6 of 16 slots idle per fetch), the `concurrency` layer (the same
//! 16 jobs at once as brigade's), the backend's own wake-ups where it has them, and a 1 s
//! polling interval behind them, brigade's default poll.

pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod sqlite;

use apalis::prelude::{BoxDynError, Data};

use super::job::NoopJob;
use super::run_log::RunLog;

/// How often an idle worker fetches when no wake-up came: brigade's default poll.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The handler every apalis worker runs: it logs the job's start and succeeds.
async fn handle(job: NoopJob, log: Data<RunLog>) -> Result<(), BoxDynError> {
    log.record(&job);
    Ok(())
}
