//! `alert-dispatch`: matches new and escalated violation events to subscriptions and delivers the alerts (SQS, after each finalize).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_sqs(stormwater::alerts::dispatch::handle).await
}
