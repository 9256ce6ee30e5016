//! `sync-stage-file`: SQS consumer; reads, checks and chunks one source file of a sync run per message, exactly once, and queues its chunks for import.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_sqs(stormwater::sync::stage_file::handle).await
}
