//! `sync-stage`: weekly schedule (or manual invoke) → S3 chunks + one SQS message per chunk.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use stormwater::config::Config;
use stormwater::sync::{Context, stage};

#[tokio::main]
async fn main() -> Result<(), Error> {
    stormwater::telemetry::init();
    let ctx = Context::init(Config::load().await?).await?;
    let ctx = &ctx;
    run(service_fn(
        move |event: LambdaEvent<stage::StageRequest>| async move {
            stage::run(ctx, event.payload).await
        },
    ))
    .await
}
