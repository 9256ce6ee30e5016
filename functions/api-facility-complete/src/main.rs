//! `GET /api/facilities/{id}/complete`: everything both programs know about one facility.
//!
//! Handler: [`stormwater::api::facility::handle_complete`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
