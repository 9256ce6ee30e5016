//! `sync-stage`: streams each source file into the S3 staging bucket in chunks of
//! `CHUNK_ROWS` records and queues one import message per chunk.
//!
//! The file is read as a stream (never whole in memory). The layout is detected (BOM,
//! comma or tab) and the header is checked against the registry before anything is written:
//! a file that lacks declared columns is rejected with their names. Each chunk is a CSV whose
//! header is `__line,__key,__ord` followed by the source header; each record carries its
//! source line, the hash of its key and its occurrence number among rows with that key, then
//! the source fields as read. Field-level checks happen in the importer, which quarantines
//! bad rows with their line.

use super::manifest::{self, Location, Source};
use super::{CHUNK_PREFIX, ChunkMessage, Context, FinalizeMessage, SyncError};
use crate::import::registry::{self, Dataset};
use crate::repo;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader, ReadBuf};

/// What starts a stage run: the weekly schedule sends `{"trigger":"schedule"}`; a manual
/// invocation may name its own sources and force re-import of unchanged files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageRequest {
    #[serde(default = "default_trigger")]
    pub trigger: String,
    /// Overrides the default manifest.
    #[serde(default)]
    pub sources: Option<Vec<Source>>,
    /// Import even when the file is unchanged since the last good import.
    #[serde(default)]
    pub force: bool,
}

fn default_trigger() -> String {
    "manual".into()
}

/// The outcome for one source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileOutcome {
    pub file_id: i64,
    pub dataset: String,
    pub url: String,
    /// `importing`, `imported`, `skipped` or `rejected`.
    pub status: String,
    pub rows: i64,
    pub chunks: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a stage invocation did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageSummary {
    pub run_id: i64,
    pub files: Vec<FileOutcome>,
}

/// Runs one stage invocation: creates a sync run and stages every source.
#[tracing::instrument(skip_all, fields(trigger = %req.trigger))]
pub async fn run(ctx: &Context, req: StageRequest) -> Result<StageSummary, SyncError> {
    let sources = req
        .sources
        .clone()
        .unwrap_or_else(manifest::default_sources);
    let run_id = repo::sync::create_run(&ctx.pool, &req.trigger).await?;
    tracing::info!(run_id, sources = sources.len(), "sync run started");
    let mut files = Vec::with_capacity(sources.len());
    for source in &sources {
        files.push(stage_source(ctx, run_id, source, req.force).await?);
    }
    repo::sync::finish_run_staging(&ctx.pool, run_id).await?;
    request_finalize_if_ready(ctx, run_id).await?;
    Ok(StageSummary { run_id, files })
}

/// Sends the run's finalize message if this caller is the one that completed it.
pub(crate) async fn request_finalize_if_ready(ctx: &Context, run_id: i64) -> Result<(), SyncError> {
    let mut tx = ctx.pool.begin().await?;
    let claimed = repo::sync::claim_finalize(&mut tx, run_id).await?;
    tx.commit().await?;
    if claimed {
        send_finalize(ctx, run_id).await?;
    }
    Ok(())
}

/// Queues the (deduplicated) finalize message for a run.
pub(crate) async fn send_finalize(ctx: &Context, run_id: i64) -> Result<(), SyncError> {
    let body = serde_json::to_string(&FinalizeMessage { run_id })
        .map_err(|e| SyncError::Message(e.to_string()))?;
    ctx.sqs
        .send_message()
        .queue_url(ctx.cfg.finalize_queue_url()?)
        .message_body(body)
        .message_group_id("finalize")
        .message_deduplication_id(format!("finalize-{run_id}"))
        .send()
        .await
        .map_err(|e| SyncError::sqs("send finalize", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    tracing::info!(run_id, "finalize requested");
    Ok(())
}

async fn stage_source(
    ctx: &Context,
    run_id: i64,
    source: &Source,
    force: bool,
) -> Result<FileOutcome, SyncError> {
    let file_id = repo::sync::create_file(&ctx.pool, run_id, source).await?;
    let mut outcome = FileOutcome {
        file_id,
        dataset: source.dataset.clone(),
        url: source.url.clone(),
        status: "rejected".into(),
        rows: 0,
        chunks: 0,
        reason: None,
    };
    let Some(dataset) = registry::dataset(&source.dataset) else {
        let reason = format!("unknown dataset {:?}", source.dataset);
        repo::sync::close_file(&ctx.pool, file_id, "rejected", &reason).await?;
        outcome.reason = Some(reason);
        return Ok(outcome);
    };
    match stage_file(ctx, run_id, file_id, dataset, source, force).await {
        Ok(o) => Ok(o),
        Err(StageFail::Reject { status, reason }) => {
            tracing::warn!(file_id, dataset = dataset.name, %reason, status, "source not imported");
            repo::sync::close_file(&ctx.pool, file_id, status, &reason).await?;
            outcome.status = status.into();
            outcome.reason = Some(reason);
            Ok(outcome)
        }
        Err(StageFail::Sync(e)) => {
            repo::sync::close_file(&ctx.pool, file_id, "failed", &e.to_string()).await?;
            Err(e)
        }
    }
}

enum StageFail {
    /// The file is not imported, for a reason that is the file's, not ours.
    Reject {
        status: &'static str,
        reason: String,
    },
    Sync(SyncError),
}

impl From<SyncError> for StageFail {
    fn from(e: SyncError) -> Self {
        Self::Sync(e)
    }
}

impl From<sqlx::Error> for StageFail {
    fn from(e: sqlx::Error) -> Self {
        Self::Sync(e.into())
    }
}

fn reject(reason: impl Into<String>) -> StageFail {
    StageFail::Reject {
        status: "rejected",
        reason: reason.into(),
    }
}

type Reader = Pin<Box<dyn AsyncRead + Send>>;

async fn open(
    ctx: &Context,
    location: &Location,
    url: &str,
) -> Result<(Reader, Option<String>), SyncError> {
    let err = |message: String| SyncError::Source {
        url: url.to_owned(),
        message,
    };
    match location {
        Location::File(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
            Ok((Box::pin(f), None))
        }
        Location::Http(u) => {
            let resp = ctx
                .http
                .get(u)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| err(e.to_string()))?;
            let etag = resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let stream = resp.bytes_stream().map_err(std::io::Error::other);
            Ok((Box::pin(tokio_util::io::StreamReader::new(stream)), etag))
        }
    }
}

/// SHA-256 of a local file, read in 1 MiB blocks.
async fn file_checksum(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

async fn stage_file(
    ctx: &Context,
    run_id: i64,
    file_id: i64,
    dataset: &'static Dataset,
    source: &Source,
    force: bool,
) -> Result<FileOutcome, StageFail> {
    let location = manifest::resolve(&ctx.http, &ctx.cfg.ckan_api_url, &source.url).await?;
    let previous =
        repo::sync::last_good_file(&ctx.pool, dataset.name, source.scope.as_deref()).await?;
    // A local file is hashed up front, so an unchanged file is skipped before any staging.
    if let (Location::File(path), Some((Some(prev_sum), _, _)), false) =
        (&location, &previous, force)
    {
        let sum = file_checksum(path).await.map_err(|e| SyncError::Source {
            url: source.url.clone(),
            message: e.to_string(),
        })?;
        if &sum == prev_sum {
            return Err(StageFail::Reject {
                status: "skipped",
                reason: format!("unchanged since the last good import (sha256 {sum})"),
            });
        }
    }
    let (reader, etag) = open(ctx, &location, &source.url).await?;
    if let (Some(e), Some((_, Some(prev_etag), _)), false) = (&etag, &previous, force)
        && e == prev_etag
    {
        return Err(StageFail::Reject {
            status: "skipped",
            reason: format!("unchanged since the last good import (ETag {e})"),
        });
    }
    let digest = Digest256::default();
    let hashing = HashingReader {
        inner: reader,
        digest: digest.clone(),
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, hashing);

    // Layout detection: strip a UTF-8 BOM, pick tab or comma from the header line.
    let head = buffered
        .fill_buf()
        .await
        .map_err(|e| source_err(source, e))?;
    if head.is_empty() {
        return Err(reject("empty file: no header line"));
    }
    let bom = head.starts_with(b"\xEF\xBB\xBF");
    let first_line = head[if bom { 3 } else { 0 }..]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let tabs = first_line.iter().filter(|&&b| b == b'\t').count();
    let commas = first_line.iter().filter(|&&b| b == b',').count();
    let delimiter = if tabs > commas { b'\t' } else { b',' };
    if bom {
        buffered.consume(3);
    }
    let mut reader = csv_async::AsyncReaderBuilder::new()
        .delimiter(delimiter)
        // Raw SMARTS TSV is unquoted: a `"` there is text, not a quote.
        .quoting(delimiter == b',')
        .flexible(true)
        .has_headers(true)
        .create_reader(buffered);
    let header: Vec<String> = reader
        .byte_headers()
        .await
        .map_err(|e| reject(format!("unreadable header: {e}")))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    if header.len() == 1 {
        let first: String = header[0].chars().take(80).collect();
        return Err(reject(format!(
            "the header has a single field: the file is neither comma- nor tab-separated (header starts {first:?})"
        )));
    }
    let map = dataset
        .map_header(&header)
        .map_err(|e| reject(e.to_string()))?;
    let key_positions: Vec<(usize, Option<usize>)> = dataset
        .key_indexes()
        .into_iter()
        .map(|i| (i, map.positions[i]))
        .collect();

    let mut chunker = Chunker::new(ctx, run_id, file_id, dataset.name, &header)?;
    let mut ordinals: HashMap<i64, u32> = HashMap::new();
    let mut record = csv_async::ByteRecord::new();
    let mut rows: i64 = 0;
    loop {
        match reader.read_byte_record(&mut record).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(SyncError::Source {
                    url: source.url.clone(),
                    message: format!("after {rows} records: {e}"),
                }
                .into());
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let key_values: Vec<Option<String>> = key_positions
            .iter()
            .map(|&(col, pos)| {
                let raw = pos
                    .and_then(|p| record.get(p))
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                registry::normalize(&dataset.columns[col], &raw)
                    .unwrap_or_else(|_| Some(raw.trim().to_owned()))
            })
            .collect();
        let key = registry::key_hash(key_values.iter().map(Option::as_deref));
        let ord = ordinals.entry(key).or_insert(0);
        chunker.push(line, key, *ord, &record)?;
        *ord += 1;
        rows += 1;
        if chunker.rows == ctx.cfg.chunk_rows {
            chunker.flush().await?;
        }
    }
    chunker.flush().await?;
    drop(reader);
    let (checksum, bytes) = digest.finish();
    let extra_columns = map.extra.clone();
    let chunks = chunker.index;
    let mut tx = ctx.pool.begin().await?;
    let all_done = repo::sync::finish_staging(
        &mut tx,
        &repo::sync::StagedFile {
            file_id,
            chunk_count: chunks,
            rows_read: rows,
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            checksum: &checksum,
            etag: etag.as_deref(),
            header: &header,
            extra_columns: &extra_columns,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(file_id, dataset = dataset.name, rows, chunks, %checksum, extra = ?extra_columns, "file staged");
    Ok(FileOutcome {
        file_id,
        dataset: dataset.name.to_owned(),
        url: source.url.clone(),
        status: if all_done { "imported" } else { "importing" }.into(),
        rows,
        chunks,
        reason: None,
    })
}

fn source_err(source: &Source, e: std::io::Error) -> StageFail {
    StageFail::Sync(SyncError::Source {
        url: source.url.clone(),
        message: e.to_string(),
    })
}

/// Accumulates records into one chunk and ships it: S3 object, `import_chunk` row, message.
struct Chunker<'a> {
    ctx: &'a Context,
    run_id: i64,
    file_id: i64,
    dataset: &'static str,
    bucket: String,
    queue_url: String,
    header: Vec<String>,
    writer: csv::Writer<Vec<u8>>,
    rows: usize,
    index: i32,
    first_line: Option<u64>,
}

impl<'a> Chunker<'a> {
    fn new(
        ctx: &'a Context,
        run_id: i64,
        file_id: i64,
        dataset: &'static str,
        header: &[String],
    ) -> Result<Self, SyncError> {
        let mut c = Self {
            ctx,
            run_id,
            file_id,
            dataset,
            bucket: ctx.cfg.staging_bucket()?.to_owned(),
            queue_url: ctx.cfg.import_queue_url()?.to_owned(),
            header: header.to_vec(),
            writer: csv::WriterBuilder::new()
                .flexible(true)
                .from_writer(Vec::new()),
            rows: 0,
            index: 0,
            first_line: None,
        };
        c.start()?;
        Ok(c)
    }

    fn start(&mut self) -> Result<(), SyncError> {
        self.writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::with_capacity(4 << 20));
        let header = CHUNK_PREFIX
            .iter()
            .copied()
            .chain(self.header.iter().map(String::as_str));
        self.writer
            .write_record(header)
            .map_err(|e| self.chunk_err(e))?;
        self.rows = 0;
        self.first_line = None;
        Ok(())
    }

    fn chunk_err(&self, e: impl std::fmt::Display) -> SyncError {
        SyncError::Chunk {
            key: self.s3_key(),
            message: e.to_string(),
        }
    }

    fn s3_key(&self) -> String {
        format!(
            "chunks/{}/{}/{}-{:05}.csv",
            self.run_id, self.dataset, self.file_id, self.index
        )
    }

    fn push(
        &mut self,
        line: u64,
        key: i64,
        ord: u32,
        record: &csv_async::ByteRecord,
    ) -> Result<(), SyncError> {
        let (line_s, key_s, ord_s) = (line.to_string(), key.to_string(), ord.to_string());
        let prefix = [line_s.as_bytes(), key_s.as_bytes(), ord_s.as_bytes()];
        self.writer
            .write_record(prefix.into_iter().chain(record.iter()))
            .map_err(|e| self.chunk_err(e))?;
        self.first_line.get_or_insert(line);
        self.rows += 1;
        Ok(())
    }

    /// Uploads the current chunk (if it has rows), records it, queues it, starts the next.
    async fn flush(&mut self) -> Result<(), SyncError> {
        if self.rows == 0 {
            return Ok(());
        }
        let key = self.s3_key();
        let first_line = i64::try_from(self.first_line.unwrap_or(0)).unwrap_or(i64::MAX);
        let body = std::mem::replace(
            &mut self.writer,
            csv::WriterBuilder::new().from_writer(Vec::new()),
        )
        .into_inner()
        .map_err(|e| self.chunk_err(e))?;
        self.ctx
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("text/csv")
            .body(body.into())
            .send()
            .await
            .map_err(|e| SyncError::s3("put chunk", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        repo::sync::create_chunk(
            &self.ctx.pool,
            self.file_id,
            self.index,
            &key,
            first_line,
            self.rows as i64,
        )
        .await?;
        let message = ChunkMessage {
            run_id: self.run_id,
            file_id: self.file_id,
            dataset: self.dataset.to_owned(),
            bucket: self.bucket.clone(),
            key: key.clone(),
            chunk_index: self.index,
            first_line,
        };
        let body =
            serde_json::to_string(&message).map_err(|e| SyncError::Message(e.to_string()))?;
        self.ctx
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                SyncError::sqs("send chunk", aws_sdk_sqs::error::DisplayErrorContext(e))
            })?;
        tracing::info!(file_id = self.file_id, chunk = self.index, rows = self.rows, %key, "chunk staged");
        self.index += 1;
        self.start()
    }
}

/// SHA-256 and byte count of everything read through a [`HashingReader`]; shared because
/// the reader ends up inside the CSV reader.
#[derive(Clone, Default)]
struct Digest256(Arc<Mutex<(Sha256, u64)>>);

impl Digest256 {
    fn update(&self, bytes: &[u8]) {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0.update(bytes);
        g.1 += bytes.len() as u64;
    }

    fn finish(&self) -> (String, u64) {
        let g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (hex::encode(g.0.clone().finalize()), g.1)
    }
}

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    digest: Digest256,
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            this.digest.update(&buf.filled()[before..]);
        }
        poll
    }
}
