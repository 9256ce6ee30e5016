//! `GET /api/facilities`.
//!
//! Handler: [`stormwater::api::facilities::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
