//! Runnable examples for brigade live in `examples/`; run one with
//! `cargo run --example quickstart`.
//!
//! This package has no API of its own: it exists so the examples can be run from the
//! repository root.
