//! `GET /api/smarts/inspections`: SMARTS inspections with their linked violations.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
