//! `GET /api/facilities.geojson`: canonical facilities as GeoJSON points.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
