//! `GET /api/violations/stats`: the same filters as `/api/violations`, aggregated.
//!
//! Handler: [`stormwater::api::violation_list::handle_stats`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
