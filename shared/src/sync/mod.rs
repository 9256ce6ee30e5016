//! The sync pipeline: `stage` starts a run and queues one message per source file;
//! `stage_file` streams one file into S3 chunks and queues one message per chunk; `import` loads a chunk with COPY and set-based SQL in one transaction; when the
//! last chunk of a run is done, exactly one `finalize` runs the post-import steps, each step its
//! own invocation (`finalize::Step`).
//! `runner` plays Lambda's SQS event source mapping for local runs and tests.

pub mod finalize;
pub mod finish;
pub mod import;
pub mod links;
pub mod manifest;
pub mod parts;
pub mod runner;
pub mod stage;
pub mod stage_file;
pub mod wiring;

use crate::cache::Cache;
pub use crate::config::Guards;
use crate::config::{Config, ConfigError};
use serde::{Deserialize, Serialize};

/// Clients every sync stage uses, built once per execution environment ([`crate::lambda::context`]).
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

/// The body of one stage-file message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMessage {
    pub run_id: i64,
    pub file_id: i64,
    pub source: manifest::Source,
    /// Import even when the file is unchanged since its last good import.
    #[serde(default)]
    pub force: bool,
}

/// The body of one finalize-queue message: which step of which run's finalize to run (a
/// message without a step, as the last chunk's importer and the stager send it, starts with
/// the files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeMessage {
    pub run_id: i64,
    #[serde(default)]
    pub step: finalize::Step,
}

pub use crate::import::chunk::CHUNK_PREFIX;

/// Sends `message` as JSON to a standard queue (`op` names the call in an error).
pub(crate) async fn send_json(
    ctx: &Context,
    queue_url: &str,
    op: &'static str,
    message: &impl Serialize,
) -> Result<(), SyncError> {
    let body = serde_json::to_string(message).map_err(|e| SyncError::Message(e.to_string()))?;
    ctx.sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| SyncError::sqs(op, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// A queue message that a mapping with `ReportBatchItemFailures` delivers to a handler of
/// [`each_message`].
pub(crate) trait Delivered: serde::de::DeserializeOwned + Send + Sync {
    /// What the handler does, for its log lines.
    const WHAT: &'static str;
    /// The queue's `maxReceiveCount`: the last delivery before SQS dead-letters the message.
    const MAX_RECEIVES: u32;
    /// Does the work (`receives`: this delivery's count).
    fn run(
        &self,
        ctx: &Context,
        receives: u32,
    ) -> impl std::future::Future<Output = Result<(), SyncError>> + Send;
    /// The last delivery failed: records the work the message stood for as failed.
    fn give_up(
        &self,
        ctx: &Context,
        error: &SyncError,
        receives: u32,
    ) -> impl std::future::Future<Output = ()> + Send;
}

/// Handles an SQS batch message by message: each body is parsed as `M` and run; a message that
/// fails is reported failed (it comes back), and on its last delivery it is first given up on
/// ([`Delivered::give_up`]), so that what it stood for is recorded failed before SQS
/// dead-letters it.
pub(crate) async fn each_message<M: Delivered>(
    ctx: &Context,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let receives = receive_count(&message);
        let parsed = serde_json::from_str::<M>(message.body.as_deref().unwrap_or_default());
        let result = match &parsed {
            Ok(m) => m.run(ctx, receives).await,
            Err(e) => Err(SyncError::Message(e.to_string())),
        };
        if let Err(e) = result {
            tracing::error!(message_id = %id, error = %e, receives, retryable = e.is_retryable(),
                            "{} failed", M::WHAT);
            if let (Ok(m), true) = (&parsed, receives >= M::MAX_RECEIVES) {
                m.give_up(ctx, &e, receives).await;
            }
            response.add_failure(id);
        }
    }
    response
}

/// How many times SQS has delivered `message` (its `ApproximateReceiveCount`; 1 when absent).
fn receive_count(message: &aws_lambda_events::event::sqs::SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

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

impl From<crate::violations::engine::EngineError> for SyncError {
    fn from(e: crate::violations::engine::EngineError) -> Self {
        match e {
            crate::violations::engine::EngineError::Db(e) => Self::Db(e),
            crate::violations::engine::EngineError::Spec(m) => Self::Message(m),
        }
    }
}

impl From<crate::import::LoadError> for SyncError {
    fn from(e: crate::import::LoadError) -> Self {
        match e {
            crate::import::LoadError::Db(e) => Self::Db(e),
            crate::import::LoadError::Chunk { key, message } => Self::Chunk { key, message },
        }
    }
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
