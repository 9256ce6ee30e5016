//! `GET /api/violations/stats`: the same filters as `/api/violations`, aggregated.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
