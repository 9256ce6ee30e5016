//! `migrate`: applies pending migrations, loads the reference benchmarks and derives the
//! canonical facilities' fields from their records (all idempotent); invoked explicitly after a
//! deploy, never at cold start.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_invoke(stormwater::lambda::migrate).await
}
