//! GCRA rate limits on job starts: one limit shared by pools, or one per key.

mod gcra;
mod keyed;
mod rate;

pub use gcra::{RateLimit, RateLimitBuilder};
pub use keyed::{KeyedRateLimit, KeyedRateLimitBuilder};
pub use rate::Rate;
