//! `sync-stage-file`: stages one source file per SQS message.
//!
//! The scheduled `sync-stage` records a run's files and queues one message per file on
//! StageFileQueue (`stage::queue_files`); this handler reads, checks and chunks that one file (`stage::stage_source`)
//! and queues its chunks for import, so that no invocation reads more than one file and the
//! files of a run are read in parallel, as far as the mapping's `MaximumConcurrency` allows.
//!
//! Exactly once per file: a delivery stages the file only while it is still `staging` and no
//! other delivery holds it (a session advisory lock, released when the invocation ends or its
//! connection dies). A delivery that finds the file staged already re-sends the messages of
//! its chunks still pending (the importer does a chunk once, whatever the copies), in case the
//! delivery that staged it stopped before it had sent them all. A delivery that finds another
//! one staging the file leaves it to that one. A delivery that fails has its message back on
//! the queue; on the last (`STAGE_FILE_MAX_RECEIVES`) the file is recorded failed, so its run
//! still finishes, and the message goes on to the DLQ, whose alarm fires.

use super::stage::{self, FileOutcome};
use super::{ChunkMessage, Context, FileMessage, SyncError};
use crate::repo;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Serialize;
use std::time::Instant;

/// What one delivery did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Delivery {
    /// The file was staged by this delivery.
    Staged(FileOutcome),
    /// The file had been staged already; `requeued` chunk messages were sent again.
    AlreadyStaged { requeued: usize },
    /// Another delivery of the same file is staging it.
    Busy,
}

/// Handles a stage-file batch (batch size 1 in the template; any size works): failures are
/// reported per message.
pub async fn handle(ctx: &Context, event: SqsEvent) -> SqsBatchResponse {
    super::each_message::<FileMessage>(ctx, event).await
}

impl super::Delivered for FileMessage {
    const WHAT: &'static str = "stage file";
    const MAX_RECEIVES: u32 = crate::config::STAGE_FILE_MAX_RECEIVES;

    async fn run(&self, ctx: &Context, _receives: u32) -> Result<(), SyncError> {
        stage_one(ctx, self).await.map(drop)
    }

    async fn give_up(&self, ctx: &Context, error: &SyncError, receives: u32) {
        give_up(ctx, self, error, receives).await;
    }
}

/// Stages the file of `m` unless it has been staged already or is being staged.
pub async fn stage_one(ctx: &Context, m: &FileMessage) -> Result<Delivery, SyncError> {
    let started = Instant::now();
    let mut lock = ctx.pool.acquire().await?;
    let held = repo::sync::try_lock_file(&mut lock, m.file_id).await?;
    if !held {
        tracing::info!(
            file_id = m.file_id,
            "file is being staged by another delivery"
        );
        return Ok(Delivery::Busy);
    }
    let result = async {
        let status = repo::sync::file_status(&ctx.pool, m.file_id).await?;
        match status.as_deref() {
            None => Err(SyncError::Message(format!(
                "run {} has no file {}",
                m.run_id, m.file_id
            ))),
            Some("staging") => {
                // An earlier delivery that stopped mid-file left chunks recorded but never
                // queued: they are forgotten (their objects are written again).
                repo::sync::discard_chunks(&ctx.pool, m.file_id).await?;
                let outcome =
                    stage::stage_source(ctx, m.run_id, m.file_id, &m.source, m.force).await?;
                let ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
                repo::sync::record_staged(&ctx.pool, m.file_id, ms).await?;
                super::finalize::request_if_ready(ctx, m.run_id).await?;
                Ok(Delivery::Staged(outcome))
            }
            Some(_) => {
                let requeued = requeue_pending(ctx, m).await?;
                super::finalize::request_if_ready(ctx, m.run_id).await?;
                Ok(Delivery::AlreadyStaged { requeued })
            }
        }
    }
    .await;
    // The lock goes with the connection if this fails; a connection returned to the pool must
    // not keep it.
    repo::sync::unlock_file(&mut lock, m.file_id).await?;
    result
}

/// Sends again the messages of the file's chunks that are still pending.
async fn requeue_pending(ctx: &Context, m: &FileMessage) -> Result<usize, SyncError> {
    let pending = repo::sync::pending_chunks(&ctx.pool, m.file_id).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let bucket = ctx.cfg.staging_bucket()?;
    let queue_url = ctx.cfg.import_queue_url()?;
    for chunk in &pending {
        let message = ChunkMessage {
            run_id: m.run_id,
            file_id: m.file_id,
            dataset: m.source.dataset.clone(),
            bucket: bucket.to_owned(),
            key: chunk.s3_key.clone(),
            chunk_index: chunk.chunk_index,
            first_line: chunk.first_line,
        };
        super::send_json(ctx, queue_url, "send chunk", &message).await?;
    }
    tracing::warn!(
        file_id = m.file_id,
        requeued = pending.len(),
        "chunk messages of a staged file sent again"
    );
    Ok(pending.len())
}

/// The last delivery failed: the file is recorded failed (if it is still staging), so the run
/// finishes without it and says why; the message goes on to the DLQ.
async fn give_up(ctx: &Context, m: &FileMessage, e: &SyncError, receives: u32) {
    let reason = format!("not staged after {receives} deliveries: {e}");
    let recorded = async {
        if repo::sync::fail_staging_file(&ctx.pool, m.file_id, &reason).await? {
            super::finalize::request_if_ready(ctx, m.run_id).await?;
        }
        Ok::<_, SyncError>(())
    }
    .await;
    if let Err(e) = recorded {
        tracing::error!(file_id = m.file_id, error = %e, "failed file not recorded");
    }
}
