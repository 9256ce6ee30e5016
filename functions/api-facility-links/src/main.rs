//! `POST /api/facilities/{id}/links`: manual facility link / unlink decisions (credentials required).
//!
//! Handler: [`stormwater::api::facility_links::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
