//! One file per subject; [`all_subjects`](crate::all_subjects) lists them.

mod brigade_thread;
mod brigade_thread_execute;
#[cfg(feature = "metrics")]
mod brigade_thread_metrics;
mod brigade_tokio;
mod brigade_tokio_execute;
mod crossbeam_pool;
mod futures_buffered;
mod middleware_stack;
mod rayon_spawn;
mod threadpool_crate;
pub(crate) mod tokio_joinset;
mod tokio_mpsc_pool;

pub use brigade_thread::{BrigadeThread, BrigadeThreadMap};
pub use brigade_thread_execute::BrigadeThreadExecute;
#[cfg(feature = "metrics")]
pub use brigade_thread_metrics::BrigadeThreadMetrics;
pub use brigade_tokio::{BrigadeTokio, BrigadeTokioMap};
pub use brigade_tokio_execute::BrigadeTokioExecute;
pub use crossbeam_pool::CrossbeamPool;
pub use futures_buffered::FuturesBuffered;
pub use middleware_stack::{Stack, middleware_stack, unbiting_rate_limit};
pub use rayon_spawn::RayonSpawn;
pub use threadpool_crate::ThreadpoolCrate;
pub use tokio_joinset::TokioJoinSet;
pub use tokio_mpsc_pool::TokioMpscPool;
