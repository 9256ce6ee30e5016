//! `GET /api/facilities`.

use lambda_http::{Error, Request, run, service_fn};
use stormwater::api::{ApiState, facilities};
use stormwater::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    stormwater::telemetry::init();
    let cfg = Config::from_env()?;
    let state = ApiState::init(&cfg)?;
    let state = &state;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(facilities::handle(state, req).await)
    }))
    .await
}
