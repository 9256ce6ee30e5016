//! Domain types parsed once at the boundary.
pub mod pollutant;
pub mod units;
pub mod wdid;
