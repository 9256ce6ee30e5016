//! Reading published files: typed parsers, the dataset registry, and the COPY + merge loader.

pub mod datasets;
pub mod load;
pub mod parse;
pub mod registry;
pub mod text;
