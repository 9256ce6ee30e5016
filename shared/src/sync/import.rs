//! `sync-import`: loads one staged chunk per SQS message.
//!
//! In one transaction per chunk: lock the chunk's bookkeeping row (a redelivered message that
//! finds it done changes nothing), stream the chunk from S3 through csv-async, read every
//! field with the column's typed parser, COPY the good rows into a temporary table, merge them
//! into the dataset's table with set-based SQL keyed by `(row_key, row_ord)` (insert new,
//! update changed, leave unchanged rows untouched), remember which keys were seen, and store
//! data-quality issues with file, line and reason. A failure rolls everything back, so a
//! worker killed mid-chunk leaves nothing half-written. Failed messages are reported as SQS
//! partial batch failures.

use super::{ChunkMessage, Context, SyncError};
use crate::import::chunk::ChunkSource;
use crate::import::load::{self, LoadCounts};
use crate::import::registry;
use crate::repo::sync;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Serialize;
use std::time::Instant;

/// What happened to one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ChunkOutcome {
    Imported(LoadCounts),
    /// The chunk was already imported (SQS delivered the message again).
    AlreadyDone,
    /// The chunk had been given up on (recorded failed); a late delivery changes nothing.
    GivenUp,
}

/// Handles one SQS batch: each message is one chunk; failures are reported per message.
pub async fn handle(ctx: &Context, event: SqsEvent) -> SqsBatchResponse {
    super::each_message::<ChunkMessage>(ctx, event).await
}

impl super::Delivered for ChunkMessage {
    const WHAT: &'static str = "chunk import";
    const MAX_RECEIVES: u32 = crate::config::IMPORT_MAX_RECEIVES;

    async fn run(&self, ctx: &Context, _receives: u32) -> Result<(), SyncError> {
        import_chunk(ctx, self).await.map(drop)
    }

    async fn give_up(&self, ctx: &Context, error: &SyncError, receives: u32) {
        give_up(ctx, self, error, receives).await;
    }
}

/// The last delivery of a poison chunk failed too: SQS moves the message to the DLQ. Record
/// the chunk as failed, so its file completes as `partial` with the reason (and withdraws
/// nothing), and the run can still finalize.
async fn give_up(ctx: &Context, chunk: &ChunkMessage, error: &SyncError, receives: u32) {
    let reason = format!(
        "chunk {} failed after {receives} deliveries: {error}",
        chunk.chunk_index
    );
    let result = async {
        let mut tx = ctx.pool.begin().await?;
        let attempts = i32::try_from(receives).unwrap_or(i32::MAX);
        let marked =
            sync::chunk_failed(&mut tx, chunk.file_id, chunk.chunk_index, attempts, &reason)
                .await?;
        let complete = marked
            && sync::count_chunk(
                &mut tx,
                chunk.file_id,
                &LoadCounts::default(),
                Some(&reason),
            )
            .await?;
        tx.commit().await?;
        if complete {
            super::finalize::request_if_ready(ctx, chunk.run_id).await?;
        }
        Ok::<_, SyncError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record the failed chunk");
    }
}

/// Imports one chunk (idempotent).
#[tracing::instrument(skip_all, fields(file_id = chunk.file_id, chunk = chunk.chunk_index, dataset = %chunk.dataset))]
pub async fn import_chunk(ctx: &Context, chunk: &ChunkMessage) -> Result<ChunkOutcome, SyncError> {
    let started = Instant::now();
    let dataset = registry::dataset(&chunk.dataset)
        .ok_or_else(|| SyncError::Message(format!("unknown dataset {:?}", chunk.dataset)))?;
    let mut tx = ctx.pool.begin().await?;
    let Some(sync::LockedChunk {
        id: chunk_id,
        status,
        source_url,
        first_load,
    }) = sync::lock_chunk(&mut tx, chunk.file_id, chunk.chunk_index).await?
    else {
        return Err(SyncError::Message(format!(
            "no import_chunk row for file {} chunk {}",
            chunk.file_id, chunk.chunk_index
        )));
    };
    if status == "done" {
        tx.commit().await?;
        tracing::info!("chunk already imported; message acknowledged without changes");
        // The delivery that imported it may have died between its commit and the hand-off
        // to finalize (a timeout, a crash, a killed worker): the hand-off is made again
        // (finalize is claimed once per run, whoever asks).
        super::finalize::request_if_ready(ctx, chunk.run_id).await?;
        return Ok(ChunkOutcome::AlreadyDone);
    }
    if status == "failed" {
        // Given up on (its run was closed, or its last delivery failed): importing it now
        // would merge rows into a run that is already finalized.
        tx.commit().await?;
        tracing::warn!("chunk was given up on; message acknowledged without changes");
        return Ok(ChunkOutcome::GivenUp);
    }

    let object = ctx
        .s3
        .get_object()
        .bucket(&chunk.bucket)
        .key(&chunk.key)
        .send()
        .await
        .map_err(|e| SyncError::s3("get chunk", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let source = ChunkSource {
        dataset,
        run_id: chunk.run_id,
        file_id: chunk.file_id,
        source_file: &source_url,
        s3_key: &chunk.key,
        first_load,
    };
    let counts = load::load_chunk(&mut tx, &source, object.body.into_async_read()).await?;

    let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    sync::chunk_done(&mut tx, chunk_id, &counts, duration_ms).await?;
    let file_complete = sync::count_chunk(&mut tx, chunk.file_id, &counts, None).await?;
    tx.commit().await?;
    tracing::info!(
        rows = counts.read,
        inserted = counts.inserted,
        updated = counts.updated,
        unchanged = counts.unchanged,
        quarantined = counts.quarantined,
        duration_ms,
        "chunk imported"
    );
    if file_complete {
        super::finalize::request_if_ready(ctx, chunk.run_id).await?;
    }
    Ok(ChunkOutcome::Imported(counts))
}
