//! `migrate`: applies pending migrations, loads the reference benchmarks and derives the
//! canonical facilities' fields from their records (all idempotent); invoked explicitly after a
//! deploy, never at cold start.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use stormwater::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    stormwater::telemetry::init();
    let pool = stormwater::db::pool(&Config::load().await?)?;
    let pool = &pool;
    run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            stormwater::db::migrate_all(pool).await
        },
    ))
    .await
}
