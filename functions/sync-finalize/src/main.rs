//! `sync-finalize`: FIFO SQS consumer; finalizes each completed run exactly once.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use stormwater::aws_lambda_events::event::sqs::SqsEvent;
use stormwater::config::Config;
use stormwater::sync::{Context, finalize};

#[tokio::main]
async fn main() -> Result<(), Error> {
    stormwater::telemetry::init();
    let ctx = Context::init(Config::from_env()?).await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(finalize::handle(ctx, event.payload).await)
    }))
    .await
}
