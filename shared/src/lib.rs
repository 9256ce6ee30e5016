//! Stormwater Watch: everything the Lambda functions share. Each function's `main.rs` only
//! wires telemetry, config, clients and one handler from here.

pub mod api;
pub mod aws;
pub mod cache;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod import;
pub mod repo;
pub mod sync;
pub mod telemetry;

pub use aws_lambda_events;
pub use db::MIGRATOR;
