//! Retry with exponential backoff, jitter and a retry budget.

mod backoff;
mod budget;
mod jitter;
mod policy;

pub use backoff::Backoff;
pub use budget::{RetryBudget, RetryBudgetBuilder};
pub use jitter::Jitter;
pub use policy::{Retry, RetryBuilder};
