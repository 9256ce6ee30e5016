//! `GET /api/violations/{id}`: one violation event with its samples, benchmark, NAL statistics, Level and review history.
//!
//! Handler: [`stormwater::api::violations::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
