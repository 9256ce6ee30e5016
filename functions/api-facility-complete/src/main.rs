//! `GET /api/facilities/{id}/complete`: everything both programs know about one facility.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
