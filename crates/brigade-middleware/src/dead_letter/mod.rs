//! The dead-letter queue: a layer, the sink trait, an in-memory sink and (feature
//! `dead-letter-jsonl`) a durable JSON Lines sink with replay.

#[cfg(feature = "dead-letter-jsonl")]
mod jsonl;
mod memory;
mod queue;
#[cfg(feature = "dead-letter-jsonl")]
mod replay;
mod replay_report;
mod sink;

#[cfg(feature = "dead-letter-jsonl")]
pub use jsonl::{JsonlSink, StoredLetter};
pub use memory::MemorySink;
pub use queue::{DeadLetterAlert, DeadLetterQueue};
pub use replay_report::ReplayReport;
pub use sink::{DeadLetterSink, SinkError};
