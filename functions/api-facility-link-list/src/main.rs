//! `GET /api/facility-links`: facility links for review.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(env!("CARGO_PKG_NAME")).await
}
