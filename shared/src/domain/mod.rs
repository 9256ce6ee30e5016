//! Domain types parsed once at the boundary.
pub mod benchmarks;
pub mod names;
pub mod pollutant;
pub mod sampling;
pub mod units;
pub mod wdid;
