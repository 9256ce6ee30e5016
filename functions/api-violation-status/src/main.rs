//! `PATCH /api/violations/{id}/status`: the review workflow (credentials required).
//!
//! Handler: [`stormwater::api::violations::handle_status`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
