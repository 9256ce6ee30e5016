//! `POST|GET /api/subscriptions`, `DELETE /api/subscriptions/{id}` (credentials required).
//!
//! Handlers: [`stormwater::api::subscriptions::handle_create`], [`stormwater::api::subscriptions::handle_list`], [`stormwater::api::subscriptions::handle_delete`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
