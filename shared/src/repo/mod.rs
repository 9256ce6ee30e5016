//! Repository functions: the bookkeeping and reference SQL (sync runs, files and chunks; the
//! benchmarks; the SMARTS facility list; the parts of a fanned-out finalize step; the stored per-facility summaries and list stats). Each takes an executor, so callers own transactions.
//! Engines and handlers keep their own SQL beside their logic (docs/ARCHITECTURE.md, "SQL").

pub mod benchmarks;
pub mod facilities;
pub mod list_stats;
pub mod parts;
pub mod summary;
pub mod sync;
