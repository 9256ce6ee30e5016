//! `GET /api/facilities/{id}`: one canonical facility (profile, links, counts, ERA Level).
//!
//! Handler: [`stormwater::api::facility::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
