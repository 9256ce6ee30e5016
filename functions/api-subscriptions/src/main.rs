//! `POST|GET /api/subscriptions`, `DELETE /api/subscriptions/{id}` (credentials required).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(env!("CARGO_PKG_NAME")).await
}
