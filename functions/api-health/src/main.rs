//! `GET /api/health`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(|state, _req| stormwater::api::health::handle(state)).await
}
