//! Domain types parsed once at the boundary.
pub mod wdid;
