//! `GET /api/facilities`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::api::serve(stormwater::api::facilities::handle).await
}
