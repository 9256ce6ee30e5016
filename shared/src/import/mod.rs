//! Reading published files: typed parsers, the dataset registry, and the COPY + merge loader.

pub mod chunk;
pub mod datasets;
pub mod first_load;
pub mod issue;
pub mod load;
pub mod parse;
pub mod registry;
pub mod text;

use serde::{Deserialize, Serialize};

/// One source of one dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Registry name of the dataset (see `import::registry`).
    pub dataset: String,
    /// `file://…`, `http(s)://…`, or `ckan:<resource id>`.
    pub url: String,
    /// The part of the dataset the file covers (eSMR: the sampling year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Why a chunk could not be loaded (the sync stage turns it into its own error).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("chunk {key}: {message}")]
    Chunk { key: String, message: String },
}
