//! `sync-finalize-part`: SQS consumer; runs one part of a fanned-out finalize step (the violation engine's parts) per message, exactly once.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_sqs(stormwater::sync::parts::handle).await
}
