//! The execution environment: everything a Lambda function sets up once, at cold start, before
//! its first event, and the runtime loop that then calls its handler. Every `functions/*/main.rs`
//! is one call into this module; nothing below it builds clients, reads secrets or starts
//! telemetry.
//!
//! - [`init_telemetry`]: the Lambda runtime's tracing subscriber;
//! - [`load_config`]: typed config from the environment, then the secrets it names
//!   ([`secrets`], read from Secrets Manager);
//! - [`context`]: the pool and clients of the sync stages ([`aws`] for S3 and SQS);
//! - [`serve_http`], [`serve_sqs`], [`serve_invoke`]: the whole `main` of an API Gateway, an
//!   SQS-triggered and a directly invoked function;
//! - the global allocator (mimalloc) of every binary that links this crate.

pub mod aws;
pub mod secrets;

use crate::api::ApiState;
use crate::cache::Cache;
use crate::config::{Config, ConfigError};
use crate::sync::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// mimalloc instead of the system allocator: a page of the directory builds thousands of small
/// JSON values, and under concurrent requests glibc's malloc spent a third of the server's CPU
/// time in its own locks (measured with perf at 32 connections; docs/BENCHMARKS_API.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Lambda runtime's subscriber (reads `AWS_LAMBDA_LOG_LEVEL`/`RUST_LOG`, JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`). First thing in every `main`, local tools included.
pub fn init_telemetry() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Reads the environment and the secrets it names: what a function calls once per execution
/// environment.
pub async fn load_config() -> Result<Config, ConfigError> {
    with_secrets(Config::from_env()?).await
}

/// Reads the database URL from Secrets Manager when `DATABASE_SECRET_ARN` is set, and the SMTP
/// password when `SMTP_PASSWORD_SECRET_ARN` is.
pub async fn with_secrets(mut cfg: Config) -> Result<Config, ConfigError> {
    if cfg.database_secret_arn.is_none() && cfg.smtp_password_secret_arn.is_none() {
        return Ok(cfg);
    }
    let sdk = aws::sdk_config(&cfg).await;
    if let (Some(arn), Some(smtp)) = (cfg.smtp_password_secret_arn.clone(), cfg.smtp.as_mut()) {
        let password = secrets::read(&sdk, &arn)
            .await
            .map_err(|e| ConfigError::Invalid {
                name: "SMTP_PASSWORD_SECRET_ARN",
                reason: e.to_string(),
            })?;
        smtp.password = Some(SecretString::from(password));
    }
    let Some(arn) = cfg.database_secret_arn.clone() else {
        return Ok(cfg);
    };
    let target = secrets::DatabaseTarget {
        host: cfg.database_host.as_deref(),
        name: cfg.database_name.as_deref(),
    };
    cfg.database_url = secrets::database_url(&sdk, &arn, &target)
        .await
        .map_err(|e| ConfigError::Invalid {
            name: "DATABASE_SECRET_ARN",
            reason: e.to_string(),
        })?;
    Ok(cfg)
}

/// The steps of a cold start and what each took: logged once, when the execution environment
/// is ready for its first event (`execution environment ready`, which `xtask bench-cold` reads).
pub struct InitSteps {
    start: std::time::Instant,
    last: std::time::Instant,
    steps: Vec<(&'static str, std::time::Duration)>,
}

impl InitSteps {
    /// Starts timing.
    pub fn start() -> Self {
        let now = std::time::Instant::now();
        Self {
            start: now,
            last: now,
            steps: Vec::new(),
        }
    }

    /// Ends the step `name` (it began where the last one ended).
    pub fn done(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.steps.push((name, now - self.last));
        self.last = now;
    }

    /// `config=0.120ms state=0.031ms`: each step in order.
    pub fn steps(&self) -> String {
        self.steps
            .iter()
            .map(|(n, d)| format!("{n}={:.3}ms", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Logs the steps and their total.
    pub fn ready(&self) {
        tracing::info!(
            steps = %self.steps(),
            total_ms = self.start.elapsed().as_secs_f64() * 1000.0,
            "execution environment ready"
        );
    }
}

/// The pool and clients every sync stage uses, from typed config.
pub async fn context(cfg: Config) -> Result<Context, ConfigError> {
    context_timed(cfg, &mut InitSteps::start()).await
}

/// [`context`], each client's set-up a step of `steps`.
async fn context_timed(cfg: Config, steps: &mut InitSteps) -> Result<Context, ConfigError> {
    let pool = crate::db::pool(&cfg).map_err(|e| ConfigError::Invalid {
        name: "DATABASE_URL",
        reason: e.to_string(),
    })?;
    steps.done("pool");
    let sdk = aws::sdk_config(&cfg).await;
    steps.done("aws_config");
    let (s3, sqs) = (aws::s3(&sdk, &cfg), aws::sqs(&sdk));
    steps.done("s3_sqs_clients");
    let http = reqwest::Client::builder()
        .user_agent("stormwater-watch-sync/0.1")
        .connect_timeout(std::time::Duration::from_secs(20))
        .build()
        .map_err(|e| ConfigError::Invalid {
            name: "HTTP client",
            reason: e.to_string(),
        })?;
    steps.done("http_client_tls");
    let webhooks = crate::outbound::Client::new(cfg.outbound.clone(), cfg.webhook_timeout)
        .map_err(|e| ConfigError::Invalid {
            name: "webhook HTTP client",
            reason: e.to_string(),
        })?;
    steps.done("webhook_client_tls");
    let cache = Cache::new(cfg.redis_url.as_deref());
    steps.done("cache");
    Ok(Context {
        s3,
        sqs,
        cache,
        pool,
        http,
        webhooks,
        cfg,
    })
}

/// Telemetry, config and the sync context, built once; the context lives as long as the
/// execution environment.
async fn cold_start() -> Result<&'static Context, lambda_runtime::Error> {
    let mut steps = InitSteps::start();
    init_telemetry();
    steps.done("telemetry");
    let cfg = load_config().await?;
    steps.done("config");
    let ctx = context_timed(cfg, &mut steps).await?;
    steps.ready();
    Ok(Box::leak(Box::new(ctx)))
}

/// The whole `main` of the HTTP function `name` (its package name, see
/// [`crate::api::routes::FUNCTIONS`]): the API state built once, then the function's handler
/// for every request API Gateway sends.
pub async fn serve_http(name: &str) -> Result<(), lambda_http::Error> {
    let mut steps = InitSteps::start();
    init_telemetry();
    steps.done("telemetry");
    let function = crate::api::routes::function(name)
        .ok_or_else(|| format!("{name} is not an HTTP function of api::routes"))?;
    let cfg = load_config().await?;
    steps.done("config");
    // The state lives as long as the execution environment; the pool connects on first use.
    let state: &'static ApiState = Box::leak(Box::new(ApiState::init(&cfg)?));
    steps.done("state");
    steps.ready();
    lambda_http::run(lambda_http::service_fn(move |req| async move {
        Ok::<_, lambda_http::Error>(function.handle(state, req).await)
    }))
    .await
}

/// The whole `main` of an SQS-triggered function: `handler` for every batch (it reports partial
/// batch failures itself; the template's mapping says `ReportBatchItemFailures`).
pub async fn serve_sqs<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(&'static Context, SqsEvent) -> Fut + Sync,
    Fut: Future<Output = SqsBatchResponse> + Send,
{
    let ctx = cold_start().await?;
    let handler = &handler;
    // Boxed as in `serve_invoke`.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(Box::pin(handler(ctx, event.payload)).await)
    }))
    .await
}

/// The whole `main` of a directly invoked function (the schedule's or an operator's event):
/// `handler` for every event; its error is the invocation's error.
pub async fn serve_invoke<E, R, Err, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    E: DeserializeOwned + Send,
    R: Serialize,
    Err: Into<lambda_runtime::Diagnostic> + std::fmt::Debug,
    F: Fn(&'static Context, E) -> Fut + Sync,
    Fut: Future<Output = Result<R, Err>> + Send,
{
    let ctx = cold_start().await?;
    let handler = &handler;
    // Boxed: the engine's and the publication's futures nest deep, and inlined into `main`'s
    // the release build overflows rustc's query depth computing its layout.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| async move {
        Box::pin(handler(ctx, event.payload)).await
    }))
    .await
}

/// What one `migrate` invocation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrateReport {
    /// Migrations known (all applied).
    pub migrated: usize,
    pub pollutants: u64,
    pub benchmarks: u64,
    /// Canonical facilities whose served fields changed.
    pub facilities_refreshed: u64,
    /// Facility summary rows rebuilt (so a deploy that adds a summary column serves it).
    pub summaries: u64,
}

/// One `migrate` invocation (its event is not read): applies pending migrations, loads the
/// reference benchmarks and derives the canonical facilities' fields from their records, all
/// idempotent. The `migrate` function and `xtask migrate` run this; functions never migrate at
/// cold start.
pub async fn migrate(
    ctx: &Context,
    _event: serde_json::Value,
) -> Result<MigrateReport, lambda_runtime::Error> {
    migrate_pool(&ctx.pool).await
}

/// [`migrate`] over a pool.
pub async fn migrate_pool(pool: &sqlx::PgPool) -> Result<MigrateReport, lambda_runtime::Error> {
    crate::db::migrate(pool).await?;
    let loaded = crate::repo::benchmarks::load(pool).await?;
    let facilities_refreshed = crate::facility::refresh(pool).await?;
    let summaries = crate::repo::summary::refresh(pool, None).await?;
    Ok(MigrateReport {
        migrated: crate::MIGRATOR.iter().count(),
        pollutants: loaded.pollutants,
        benchmarks: loaded.benchmarks,
        facilities_refreshed,
        summaries,
    })
}

// What each directly invoked function's error reports as Lambda's `errorType`.

impl From<crate::sync::SyncError> for lambda_runtime::Diagnostic {
    fn from(e: crate::sync::SyncError) -> Self {
        let kind = if e.is_retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        };
        lambda_runtime::Diagnostic {
            error_type: kind.to_owned(),
            error_message: e.to_string(),
        }
    }
}

impl From<crate::linking::LinkError> for lambda_runtime::Diagnostic {
    fn from(e: crate::linking::LinkError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "LinkError".to_owned(),
            error_message: e.to_string(),
        }
    }
}

impl From<crate::api::publish::PublishError> for lambda_runtime::Diagnostic {
    fn from(e: crate::api::publish::PublishError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "PublishError".to_owned(),
            error_message: e.to_string(),
        }
    }
}
