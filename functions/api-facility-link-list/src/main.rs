//! `GET /api/facility-links`: facility links for review.
//!
//! Handler: [`stormwater::api::facility_link_list::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
