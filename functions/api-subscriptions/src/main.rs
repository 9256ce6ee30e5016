//! `POST|GET /api/subscriptions`, `DELETE /api/subscriptions/{id}` (credentials required).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
