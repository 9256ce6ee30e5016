//! `GET /api/sync/status` and `GET /api/sync/runs/{id}`.
//!
//! Handlers: [`stormwater::api::sync_status::handle_recent`], [`stormwater::api::sync_status::handle_run`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
