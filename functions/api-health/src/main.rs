//! `GET /api/health`.

use lambda_http::{Error, run, service_fn};
use stormwater::api::{ApiState, health};
use stormwater::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    stormwater::telemetry::init();
    let cfg = Config::from_env()?;
    let state = ApiState::init(&cfg)?;
    let state = &state;
    run(service_fn(move |_req| async move {
        Ok::<_, Error>(health::handle(state).await)
    }))
    .await
}
