//! `GET /api/smarts/inspections`: SMARTS inspections with their linked violations.
//!
//! Handler: [`stormwater::api::smarts::handle_inspections`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
