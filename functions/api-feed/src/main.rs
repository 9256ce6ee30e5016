//! `GET /api/feed.atom`: an Atom feed of new and escalated events and new enforcement actions.
//!
//! Handler: [`stormwater::api::feed::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stormwater::lambda::serve_http(env!("CARGO_PKG_NAME")).await
}
