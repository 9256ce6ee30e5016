//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every endpoint.
//!
//! Handler: [`stormwater::api::openapi::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
