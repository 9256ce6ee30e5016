//! `GET /api/facilities/{id}/evidence`: the evidence behind a notice letter, as a ZIP.
//!
//! Handler: [`stormwater::api::evidence::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
