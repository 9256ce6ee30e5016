//! `GET /api/violations/stats`: the same filters as `/api/violations`, aggregated.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(env!("CARGO_PKG_NAME")).await
}
