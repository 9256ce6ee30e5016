//! Repository functions: SQL lives here. Each takes an executor, so callers own transactions.

pub mod benchmarks;
pub mod facilities;
pub mod sync;
