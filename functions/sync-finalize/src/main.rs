//! `sync-finalize`: FIFO SQS consumer; finalizes each completed run exactly once.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_sqs(stormwater::sync::finalize::handle).await
}
