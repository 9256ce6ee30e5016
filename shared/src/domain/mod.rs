//! Domain types parsed once at the boundary.
pub mod benchmarks;
pub mod pollutant;
pub mod units;
pub mod wdid;
