//! `GET /api/facilities/{id}/timeline`: one facility's dated feed.
//!
//! Handler: [`stormwater::api::facility::handle_timeline`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
