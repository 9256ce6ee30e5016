//! `GET /api/smarts/facilities`: SMARTS industrial and construction facility records.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
