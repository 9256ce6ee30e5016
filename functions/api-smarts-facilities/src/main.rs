//! `GET /api/smarts/facilities`: SMARTS industrial and construction facility records.
//!
//! Handler: [`stormwater::api::smarts::handle_facilities`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
