//! Stormwater Watch: everything the Lambda functions share. Each function's `main.rs` is one
//! call into [`lambda`], naming its handler; docs/ARCHITECTURE.md draws the layers.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod domain;
pub mod facility;
pub mod http;
pub mod import;
pub mod lambda;
pub mod linking;
pub mod outbound;
pub mod repo;
pub mod sync;
pub mod violations;

pub use aws_lambda_events;
pub use db::MIGRATOR;
