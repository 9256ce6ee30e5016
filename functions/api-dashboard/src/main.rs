//! `GET /api/dashboard`: the overview for the state, a county or a region.
//!
//! Handler: [`stormwater::api::dashboard::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
