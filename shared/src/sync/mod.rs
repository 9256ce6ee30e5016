//! The sync pipeline: `stage` streams each source file into S3 chunks and queues one message
//! per chunk; `import` loads a chunk with COPY and set-based SQL in one transaction; when the
//! last chunk of a run is done, exactly one `finalize` runs the post-import steps.
//! `runner` plays Lambda's SQS event source mapping for local runs and tests.

pub mod finalize;
pub mod import;
pub mod links;
pub mod manifest;
pub mod runner;
pub mod stage;
pub mod wiring;

use crate::cache::Cache;
use crate::config::{Config, ConfigError};
use serde::{Deserialize, Serialize};

/// What a bad file or a stuck run may do. A row that could not be read is never evidence that
/// its record disappeared, and a file that is mostly unreadable changes nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// A file in which more than this share of the rows cannot be stored (wrong field count,
    /// no identifier) fails whole before anything is queued: nothing of it is imported.
    pub quarantine_max_share: f64,
    /// A file that would store fewer rows than this share of the last good file of its dataset
    /// (and scope) fails whole the same way: a truncated download is not the new truth.
    pub collapse_min_share: f64,
    /// A file that stores fewer rows than this share of the last good file is imported, but
    /// withdraws nothing (the run says why).
    pub withdraw_min_share: f64,
    /// A run not finished this many minutes after it started is closed (`failed`, with the
    /// reason) by the next run.
    pub run_deadline_minutes: u32,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            quarantine_max_share: 0.5,
            collapse_min_share: 0.5,
            withdraw_min_share: 0.9,
            run_deadline_minutes: 720,
        }
    }
}

/// Clients every sync stage uses, built once per execution environment.
pub struct Context {
    pub cfg: Config,
    pub pool: sqlx::PgPool,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub cache: Cache,
    /// Downloads of the sources the operator configured (data.ca.gov, CKAN).
    pub http: reqwest::Client,
    /// Webhook deliveries: public addresses only, unless `OUTBOUND_ALLOW_HOSTS` says otherwise.
    pub webhooks: crate::outbound::Client,
}

impl Context {
    /// Builds the pool and clients from typed config.
    pub async fn init(cfg: Config) -> Result<Self, ConfigError> {
        let pool = crate::db::pool(&cfg).map_err(|e| ConfigError::Invalid {
            name: "DATABASE_URL",
            reason: e.to_string(),
        })?;
        let sdk = crate::aws::sdk_config(&cfg).await;
        let http = reqwest::Client::builder()
            .user_agent("stormwater-watch-sync/0.1")
            .connect_timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| ConfigError::Invalid {
                name: "HTTP client",
                reason: e.to_string(),
            })?;
        let webhooks = crate::outbound::Client::new(cfg.outbound.clone(), cfg.webhook_timeout)
            .map_err(|e| ConfigError::Invalid {
                name: "webhook HTTP client",
                reason: e.to_string(),
            })?;
        Ok(Self {
            s3: crate::aws::s3(&sdk, &cfg),
            sqs: crate::aws::sqs(&sdk),
            cache: Cache::new(cfg.redis_url.as_deref()),
            pool,
            http,
            webhooks,
            cfg,
        })
    }
}

/// The body of one import-queue message: where a staged chunk is and what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMessage {
    pub run_id: i64,
    pub file_id: i64,
    pub dataset: String,
    pub bucket: String,
    pub key: String,
    pub chunk_index: i32,
    /// Source line of the chunk's first record.
    pub first_line: i64,
}

/// The body of one finalize-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeMessage {
    pub run_id: i64,
}

/// Chunk files carry three bookkeeping columns before the source fields.
pub const CHUNK_PREFIX: [&str; 3] = ["__line", "__key", "__ord"];

/// Errors of the sync stages. `Retryable` ones are worth another delivery.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("S3 {op}: {message}")]
    S3 { op: &'static str, message: String },
    #[error("SQS {op}: {message}")]
    Sqs { op: &'static str, message: String },
    #[error("reading source {url}: {message}")]
    Source { url: String, message: String },
    #[error("malformed message: {0}")]
    Message(String),
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("chunk {key}: {message}")]
    Chunk { key: String, message: String },
}

impl SyncError {
    /// Whether another attempt could succeed (Lambda's `errorType`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Db(_) | Self::S3 { .. } | Self::Sqs { .. } | Self::Source { .. }
        )
    }

    pub(crate) fn s3(op: &'static str, e: impl std::fmt::Display) -> Self {
        Self::S3 {
            op,
            message: e.to_string(),
        }
    }

    pub(crate) fn sqs(op: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Sqs {
            op,
            message: e.to_string(),
        }
    }
}

impl From<SyncError> for lambda_runtime::Diagnostic {
    fn from(e: SyncError) -> Self {
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

/// The whole `main` of an SQS-triggered stage: telemetry, typed config (read once), clients
/// built once per execution environment, then the Lambda runtime loop calling `handler`
/// (which reports partial batch failures itself).
pub async fn serve_sqs<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(&'static Context, aws_lambda_events::event::sqs::SqsEvent) -> Fut + Sync,
    Fut: Future<Output = aws_lambda_events::event::sqs::SqsBatchResponse> + Send,
{
    crate::telemetry::init();
    // The context lives as long as the execution environment.
    let ctx: &'static Context = Box::leak(Box::new(Context::init(Config::load().await?).await?));
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(handler(ctx, event.payload).await)
        },
    ))
    .await
}
