//! The dead-letter queue: a layer, the sink trait, an in-memory sink and a durable JSON
//! Lines sink with replay.

mod jsonl;
mod memory;
mod queue;
mod replay;
mod sink;

pub use jsonl::{JsonlSink, StoredLetter};
pub use memory::MemorySink;
pub use queue::{DeadLetterAlert, DeadLetterQueue};
pub use replay::ReplayReport;
pub use sink::{DeadLetterSink, SinkError};
