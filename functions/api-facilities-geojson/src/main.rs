//! `GET /api/facilities.geojson`: canonical facilities as GeoJSON points.
//!
//! Handler: [`stormwater::api::geojson::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
