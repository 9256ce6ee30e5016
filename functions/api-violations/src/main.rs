//! `GET /api/violations`: computed exceedance events of both programs, filtered, paged, JSON or CSV.
//!
//! Handler: [`stormwater::api::violation_list::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
