//! `GET /api/sync/status` and `GET /api/sync/runs/{id}`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(stormwater::api::sync_status::handle).await
}
