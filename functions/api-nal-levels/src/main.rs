//! `GET /api/nal-levels`: IGP ERA Level status per facility and pollutant.
//!
//! Handler: [`stormwater::api::nal_levels::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
