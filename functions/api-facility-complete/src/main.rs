//! `GET /api/facilities/{id}/complete`: everything both programs know about one facility.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(env!("CARGO_PKG_NAME")).await
}
