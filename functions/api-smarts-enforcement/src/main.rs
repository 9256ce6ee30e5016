//! `GET /api/smarts/enforcement`: SMARTS enforcement actions with stats.
//!
//! Handler: [`stormwater::api::smarts::handle_enforcement`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
