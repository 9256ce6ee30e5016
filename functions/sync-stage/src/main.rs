//! `sync-stage`: weekly schedule (or manual invoke) → S3 chunks + one SQS message per chunk.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_invoke(stormwater::sync::stage::run).await
}
