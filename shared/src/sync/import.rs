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

use super::{CHUNK_PREFIX, ChunkMessage, Context, SyncError};
use crate::import::load::{self, DataIssue, IssueAction, LoadCounts};
use crate::import::registry::{self, Dataset, Presence};
use crate::import::text;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
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
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if let Err(e) = handle_message(ctx, &message).await {
            let receives = receive_count(&message);
            tracing::error!(message_id = %id, error = %e, receives, retryable = e.is_retryable(), "chunk import failed");
            if receives >= super::runner::IMPORT_MAX_RECEIVES {
                give_up(ctx, &message, &e, receives).await;
            }
            response.add_failure(id);
        }
    }
    response
}

fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The last delivery of a poison chunk failed too: SQS moves the message to the DLQ. Record
/// the chunk as failed, so its file completes as `partial` with the reason (and withdraws
/// nothing), and the run can still finalize.
async fn give_up(ctx: &Context, message: &SqsMessage, error: &SyncError, receives: u32) {
    let Ok(chunk) =
        serde_json::from_str::<ChunkMessage>(message.body.as_deref().unwrap_or_default())
    else {
        return;
    };
    let reason = format!(
        "chunk {} failed after {receives} deliveries: {error}",
        chunk.chunk_index
    );
    let result = async {
        let mut tx = ctx.pool.begin().await?;
        let marked = sqlx::query(
            "update import_chunk set status = 'failed', attempts = $3, error = $4, finished_at = now()
             where file_id = $1 and chunk_index = $2 and status = 'pending'",
        )
        .bind(chunk.file_id)
        .bind(chunk.chunk_index)
        .bind(i32::try_from(receives).unwrap_or(i32::MAX))
        .bind(&reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let complete = if marked == 1 {
            sqlx::query_scalar::<_, bool>(
                "update sync_file set chunks_done = chunks_done + 1,
                        error = left(coalesce(error || '; ', '') || $2, 4000),
                        status = case when chunk_count = chunks_done + 1 then 'imported' else status end
                  where id = $1 returning status = 'imported'",
            )
            .bind(chunk.file_id)
            .bind(&reason)
            .fetch_one(&mut *tx)
            .await?
        } else {
            false
        };
        tx.commit().await?;
        if complete {
            super::stage::request_finalize_if_ready(ctx, chunk.run_id).await?;
        }
        Ok::<_, SyncError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record the failed chunk");
    }
}

async fn handle_message(ctx: &Context, message: &SqsMessage) -> Result<ChunkOutcome, SyncError> {
    let body = message.body.as_deref().unwrap_or_default();
    let chunk: ChunkMessage =
        serde_json::from_str(body).map_err(|e| SyncError::Message(e.to_string()))?;
    import_chunk(ctx, &chunk).await
}

/// Imports one chunk (idempotent).
#[tracing::instrument(skip_all, fields(file_id = chunk.file_id, chunk = chunk.chunk_index, dataset = %chunk.dataset))]
pub async fn import_chunk(ctx: &Context, chunk: &ChunkMessage) -> Result<ChunkOutcome, SyncError> {
    let started = Instant::now();
    let dataset = registry::dataset(&chunk.dataset)
        .ok_or_else(|| SyncError::Message(format!("unknown dataset {:?}", chunk.dataset)))?;
    let mut tx = ctx.pool.begin().await?;
    let state: Option<(i64, String, String)> = sqlx::query_as(
        "select c.id, c.status, f.source_url from import_chunk c join sync_file f on f.id = c.file_id
         where c.file_id = $1 and c.chunk_index = $2 for update of c",
    )
    .bind(chunk.file_id)
    .bind(chunk.chunk_index)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((chunk_id, status, source_url)) = state else {
        return Err(SyncError::Message(format!(
            "no import_chunk row for file {} chunk {}",
            chunk.file_id, chunk.chunk_index
        )));
    };
    if status == "done" {
        tx.commit().await?;
        tracing::info!("chunk already imported; message acknowledged without changes");
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
    };
    let counts = load::load_chunk(&mut tx, &source, object.body.into_async_read()).await?;

    let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    sqlx::query(
        "update import_chunk set status = 'done', attempts = attempts + 1, rows_read = $2,
                rows_inserted = $3, rows_updated = $4, rows_unchanged = $5, rows_quarantined = $6,
                duration_ms = $7, error = null, started_at = now() - make_interval(secs => $7 / 1000.0),
                finished_at = now()
         where id = $1",
    )
    .bind(chunk_id)
    .bind(counts.read as i32)
    .bind(counts.inserted as i32)
    .bind(counts.updated as i32)
    .bind(counts.unchanged as i32)
    .bind(counts.quarantined as i32)
    .bind(duration_ms)
    .execute(&mut *tx)
    .await?;
    let file_complete: bool = sqlx::query_scalar(
        "update sync_file set chunks_done = chunks_done + 1,
                rows_inserted = rows_inserted + $2, rows_updated = rows_updated + $3,
                rows_unchanged = rows_unchanged + $4, rows_quarantined = rows_quarantined + $5,
                status = case when chunk_count = chunks_done + 1 then 'imported' else status end
         where id = $1 returning status = 'imported'",
    )
    .bind(chunk.file_id)
    .bind(counts.inserted as i64)
    .bind(counts.updated as i64)
    .bind(counts.unchanged as i64)
    .bind(counts.quarantined as i64)
    .fetch_one(&mut *tx)
    .await?;
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
        super::stage::request_finalize_if_ready(ctx, chunk.run_id).await?;
    }
    Ok(ChunkOutcome::Imported(counts))
}

/// Identifies a chunk for loading and for data-quality records.
pub struct ChunkSource<'a> {
    pub dataset: &'static Dataset,
    pub run_id: i64,
    pub file_id: i64,
    /// The source file (URL) the chunk came from, as recorded on quarantined rows.
    pub source_file: &'a str,
    pub s3_key: &'a str,
}

/// One parsed chunk record, ready to be written to COPY or quarantined.
pub(crate) enum Parsed {
    Row {
        line: i64,
        key: i64,
        ord: i32,
        values: Vec<registry::Normalized>,
        issues: Vec<DataIssue>,
    },
    Quarantined(DataIssue),
}

/// Maps a chunk header to the dataset's columns.
pub(crate) fn chunk_header_map(
    dataset: &Dataset,
    header: &[String],
) -> Result<registry::HeaderMap, String> {
    if header.len() < CHUNK_PREFIX.len() || header[..CHUNK_PREFIX.len()] != CHUNK_PREFIX {
        return Err(format!(
            "chunk header must start with {}",
            CHUNK_PREFIX.join(",")
        ));
    }
    dataset
        .map_header(&header[CHUNK_PREFIX.len()..])
        .map_err(|e| e.to_string())
}

/// Reads one chunk record: bookkeeping prefix, then every declared column through its parser.
/// A record is quarantined when it cannot be stored faithfully (wrong field count, a key
/// column missing or unreadable); a bad value elsewhere is stored as NULL and reported.
pub(crate) fn parse_record(
    dataset: &Dataset,
    map: &registry::HeaderMap,
    record: &csv_async::ByteRecord,
) -> Result<Parsed, String> {
    let field = |i: usize| {
        record
            .get(i)
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
    };
    let prefix: Vec<String> = (0..CHUNK_PREFIX.len())
        .map(|i| field(i).into_owned())
        .collect();
    let (Ok(line), Ok(key), Ok(ord)) = (
        prefix[0].parse::<i64>(),
        prefix[1].parse::<i64>(),
        prefix[2].parse::<i32>(),
    ) else {
        return Err(format!(
            "chunk record has a malformed bookkeeping prefix {prefix:?}"
        ));
    };
    // Every field as text Postgres stores: not valid UTF-8 → the declared fallback encoding,
    // NUL removed; reported below for the declared columns it happened in.
    let decoded: Vec<text::Decoded<'_>> = record
        .iter()
        .skip(CHUNK_PREFIX.len())
        .map(text::decode)
        .collect();
    let source_fields: Vec<&str> = decoded.iter().map(|d| d.text.as_ref()).collect();
    let raw = || raw_text(&source_fields);
    let issue = |column: Option<&str>, action, reason: String, value: Option<String>| DataIssue {
        line,
        column: column.map(str::to_owned),
        action,
        reason,
        value,
        raw: Some(raw()),
    };
    if source_fields.len() != map.width {
        return Ok(Parsed::Quarantined(issue(
            None,
            IssueAction::RowQuarantined,
            format!(
                "expected {} fields, found {}",
                map.width,
                source_fields.len()
            ),
            None,
        )));
    }
    let mut issues = Vec::new();
    let mut values = Vec::with_capacity(dataset.columns.len());
    for (column, pos) in dataset.columns.iter().zip(&map.positions) {
        let raw_value = pos.map(|p| source_fields[p]).unwrap_or_default();
        if let Some(remark) = pos.and_then(|p| decoded[p].remark()) {
            issues.push(issue(
                Some(column.name),
                IssueAction::ValueFlagged,
                remark,
                Some(raw_value.to_owned()),
            ));
        }
        let value = match registry::normalize(column, raw_value) {
            Ok(v) => v,
            Err(e) if column.not_null => {
                return Ok(Parsed::Quarantined(issue(
                    Some(column.name),
                    IssueAction::RowQuarantined,
                    e.to_string(),
                    Some(raw_value.to_owned()),
                )));
            }
            Err(e) => {
                issues.push(issue(
                    Some(column.name),
                    IssueAction::ValueNulled,
                    e.to_string(),
                    Some(raw_value.to_owned()),
                ));
                None
            }
        };
        match &value {
            None if column.not_null => {
                return Ok(Parsed::Quarantined(issue(
                    Some(column.name),
                    IssueAction::RowQuarantined,
                    format!(
                        "{} is missing: the row cannot be identified",
                        column.name.to_ascii_uppercase()
                    ),
                    Some(raw_value.to_owned()),
                )));
            }
            None if column.kind == registry::Kind::Wdid
                && column.presence == Presence::Required =>
            {
                issues.push(issue(
                    Some(column.name),
                    IssueAction::ValueFlagged,
                    "WDID is missing".into(),
                    Some(raw_value.to_owned()),
                ));
            }
            Some(v) => {
                if let Some(reason) = registry::remark(column, v) {
                    issues.push(issue(
                        Some(column.name),
                        IssueAction::ValueFlagged,
                        reason,
                        Some(v.clone()),
                    ));
                }
            }
            None => {}
        }
        values.push(value);
    }
    Ok(Parsed::Row {
        line,
        key,
        ord,
        values,
        issues,
    })
}

/// The record as text, for the data-quality table: the source fields as CSV.
fn raw_text(fields: &[&str]) -> String {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    if w.write_record(fields.iter().map(|f| f.as_bytes())).is_err() {
        return fields.join(",");
    }
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).trim_end().to_owned())
        .unwrap_or_default()
}
