//! `GET /api/health`.
//!
//! Handler: [`stormwater::api::health::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
