//! `GET /api/violations`: computed exceedance events of both programs, filtered, paged, JSON or CSV.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(stormwater::api::violation_list::handle).await
}
