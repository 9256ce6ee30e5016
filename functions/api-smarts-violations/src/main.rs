//! `GET /api/smarts/violations`: SMARTS regulatory violations with stats.
//!
//! Handler: [`stormwater::api::smarts::handle_violations`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
