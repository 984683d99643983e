//! One file per subject; [`all_subjects`](crate::all_subjects) lists them.

mod crossbeam_pool;
mod futures_buffered;
mod rayon_spawn;
mod threadpool_crate;
pub(crate) mod tokio_joinset;

pub use crossbeam_pool::CrossbeamPool;
pub use futures_buffered::FuturesBuffered;
pub use rayon_spawn::RayonSpawn;
pub use threadpool_crate::ThreadpoolCrate;
pub use tokio_joinset::TokioJoinSet;
