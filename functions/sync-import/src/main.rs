//! `sync-import`: SQS consumer; one staged chunk per message, partial batch failures reported.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_sqs(stormwater::sync::import::handle).await
}
