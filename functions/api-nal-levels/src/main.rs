//! `GET /api/nal-levels`: IGP ERA Level status per facility and pollutant.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(stormwater::api::nal_levels::handle).await
}
