//! `GET /api/facilities/{id}`: one canonical facility (profile, links, counts, ERA Level).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
