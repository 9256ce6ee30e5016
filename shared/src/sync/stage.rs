//! `sync-stage` starts a run: it lists the sources (the manifest), records each as a file of
//! the run and queues one StageFileQueue message per file. `sync-stage-file`
//! ([`super::stage_file`]) then streams that file into the S3 staging bucket in chunks of
//! `CHUNK_ROWS` records ([`stage_source`]) and queues one import message per chunk.
//!
//! The file is read as a stream (never whole in memory). The layout is detected (BOM,
//! comma or tab) and the header is checked against the registry before anything is written:
//! a file that lacks declared columns is rejected with their names. Each chunk is a CSV whose
//! header is `__line,__key,__ord` followed by the source header; each record carries its
//! source line, the hash of its key and its occurrence number among rows with that key, then
//! the source fields as read. Field-level checks happen in the importer, which quarantines
//! bad rows with their line.

use super::manifest::{self, Location, Source};
use super::{CHUNK_PREFIX, ChunkMessage, Context, SyncError};
use crate::import::load::{self, DataIssue, IssueAction};
use crate::import::registry::{self, Dataset};
use crate::import::text;
use crate::repo;
use crate::repo::sync::GoodFile;
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

/// Runs one stage invocation: creates a sync run and queues the staging of every source.
#[tracing::instrument(skip_all, fields(trigger = %req.trigger))]
pub async fn run(ctx: &Context, req: StageRequest) -> Result<StageSummary, SyncError> {
    let (sources, listing) = match req.sources {
        Some(sources) => (sources, Ok(())),
        None => manifest::default_sources(&ctx.http, &ctx.cfg.ckan_api_url).await,
    };
    let run_id = repo::sync::create_run(&ctx.pool, &req.trigger).await?;
    tracing::info!(run_id, sources = sources.len(), "sync run started");
    let mut tx = ctx.pool.begin().await?;
    let closed =
        repo::sync::close_stale_runs(&mut tx, run_id, ctx.cfg.guards.run_deadline_minutes).await?;
    let overdue = repo::parts::fail_overdue(&mut tx).await?;
    tx.commit().await?;
    if !closed.is_empty() {
        tracing::warn!(run_id, ?closed, "closed runs past their deadline");
    }
    // A finalize step whose parts never all reported finishes now, saying which failed; one
    // whose finish was lost is queued again (deduplicated). A send that fails is logged: the
    // next run tries again.
    for (run, step) in &overdue {
        tracing::warn!(
            run_id = run,
            step,
            "finalize parts past their deadline recorded failed"
        );
    }
    let lost = repo::parts::unfinished_steps(&ctx.pool, 5).await?;
    for (run, phase) in overdue.into_iter().chain(lost) {
        let step = crate::violations::engine::step_of_phase(&phase);
        let Some(step) = super::finalize::Step::named(step) else {
            tracing::error!(run_id = run, phase, "unknown finalize step");
            continue;
        };
        if let Err(e) = super::finalize::send_finish(ctx, run, step, &phase).await {
            tracing::error!(run_id = run, error = %e, "finish of a fanned-out step not queued");
        }
    }
    // Every file is recorded first (in the request's order), then queued for staging, one
    // message per file: each is read by an invocation of its own (`stage_file`), several at
    // once. A source that fails fails its file only: the other sources of the request still run.
    let mut files = Vec::with_capacity(sources.len());
    for source in sources {
        files.push((
            repo::sync::create_file(&ctx.pool, run_id, &source).await?,
            source,
        ));
    }
    // The eSMR years could not be listed: the run says so with a failed file of its own (and,
    // staging nothing of eSMR, withdraws nothing of it).
    let mut unlisted = Vec::new();
    if let Err(e) = listing {
        let source = Source {
            dataset: "esmr".into(),
            url: manifest::package_url(manifest::ESMR_PACKAGE),
            scope: None,
        };
        let file_id = repo::sync::create_file(&ctx.pool, run_id, &source).await?;
        let reason = format!("the eSMR years could not be listed: {e}");
        tracing::warn!(run_id, file_id, %reason, "catalogue not read");
        repo::sync::close_file(&ctx.pool, file_id, "failed", &reason).await?;
        unlisted.push(FileOutcome {
            file_id,
            dataset: source.dataset,
            url: source.url,
            status: "failed".into(),
            rows: 0,
            chunks: 0,
            reason: Some(reason),
        });
    }
    let queued = queue_files(ctx, run_id, &files, req.force).await?;
    let mut outcomes: Vec<FileOutcome> = files
        .into_iter()
        .map(|(file_id, source)| {
            let sent = queued.contains(&file_id);
            FileOutcome {
                file_id,
                dataset: source.dataset,
                url: source.url,
                status: if sent { "staging" } else { "failed" }.into(),
                rows: 0,
                chunks: 0,
                reason: (!sent).then(|| "not queued for staging".to_owned()),
            }
        })
        .collect();
    outcomes.extend(unlisted);
    // Every file is recorded and queued: the run finalizes once none is staging or importing
    // (now, if none was queued).
    repo::sync::finish_run_staging(&ctx.pool, run_id).await?;
    super::finalize::request_if_ready(ctx, run_id).await?;
    Ok(StageSummary {
        run_id,
        files: outcomes,
    })
}

/// The outcome of every file of a run as recorded (in the order the files were recorded):
/// what the stage-file invocations did, once they have run.
pub async fn file_outcomes(
    db: impl sqlx::PgExecutor<'_>,
    run_id: i64,
) -> Result<Vec<FileOutcome>, SyncError> {
    Ok(repo::sync::files_of_run(db, run_id)
        .await?
        .into_iter()
        .map(|f| FileOutcome {
            file_id: f.id,
            dataset: f.dataset,
            url: f.source_url,
            status: f.status,
            rows: f.rows_read,
            chunks: f.chunk_count.unwrap_or(0),
            reason: f.error,
        })
        .collect())
}

/// Queues one stage-file message per file; on a send that fails, the file is recorded failed
/// with the reason (its run goes on without it). Returns the files whose message was sent.
pub async fn queue_files(
    ctx: &Context,
    run_id: i64,
    files: &[(i64, Source)],
    force: bool,
) -> Result<Vec<i64>, SyncError> {
    let queue_url = ctx.cfg.stage_file_queue_url()?.to_owned();
    let mut queued = Vec::with_capacity(files.len());
    for (file_id, source) in files {
        let message = super::FileMessage {
            run_id,
            file_id: *file_id,
            source: source.clone(),
            force,
        };
        match super::send_json(ctx, &queue_url, "send file", &message).await {
            Ok(()) => queued.push(*file_id),
            Err(e) => {
                let reason = format!("not queued for staging: {e}");
                tracing::error!(run_id, file_id, %reason, "stage-file message not sent");
                repo::sync::close_file(&ctx.pool, *file_id, "failed", &reason).await?;
            }
        }
    }
    Ok(queued)
}

/// Stages one file of a run (`stage_file`'s work): its outcome; a failure of the source
/// (unreadable, unfit, unchanged) closes the file with its status and reason.
pub(crate) async fn stage_source(
    ctx: &Context,
    run_id: i64,
    file_id: i64,
    source: &Source,
    force: bool,
) -> Result<FileOutcome, SyncError> {
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
    let (status, reason) = match stage_file(ctx, run_id, file_id, dataset, source, force).await {
        Ok(o) => return Ok(o),
        Err(StageFail::Reject { status, reason }) => (status, reason),
        // A source that cannot be read (or staged) fails this file; the run goes on. Only a
        // failure to record that (the database is gone) fails the invocation, and then the
        // run is closed by the next one when its deadline passes.
        Err(StageFail::Sync(e)) => ("failed", e.to_string()),
    };
    tracing::warn!(file_id, dataset = dataset.name, %reason, status, "source not imported");
    repo::sync::close_file(&ctx.pool, file_id, status, &reason).await?;
    outcome.status = status.into();
    outcome.reason = Some(reason);
    Ok(outcome)
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

/// The file was read but is not fit to import: it fails whole and changes nothing.
fn fail(reason: impl Into<String>) -> StageFail {
    StageFail::Reject {
        status: "failed",
        reason: reason.into(),
    }
}

type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// An opened source: the byte stream, its ETag and its announced length (HTTP).
struct Opened {
    reader: Reader,
    etag: Option<String>,
    length: Option<u64>,
}

async fn open(ctx: &Context, location: &Location, url: &str) -> Result<Opened, SyncError> {
    let err = |message: String| SyncError::Source {
        url: url.to_owned(),
        message,
    };
    match location {
        Location::File(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
            Ok(Opened {
                reader: Box::pin(f),
                etag: None,
                length: None,
            })
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
            let length = resp.content_length();
            let stream = resp.bytes_stream().map_err(std::io::Error::other);
            Ok(Opened {
                reader: Box::pin(tokio_util::io::StreamReader::new(stream)),
                etag,
                length,
            })
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
    let manifest::Resolved { location, version } =
        manifest::resolve(&ctx.http, &ctx.cfg.ckan_api_url, &source.url).await?;
    if let Some(v) = &version {
        repo::sync::set_catalogue_version(&ctx.pool, file_id, v).await?;
    }
    // Indexes a run that died before its finalize left deferred are rebuilt before the table
    // is compared with again.
    crate::import::first_load::rebuild_indexes(&ctx.pool, dataset.table).await?;
    let previous =
        repo::sync::last_good_file(&ctx.pool, dataset.name, source.scope.as_deref()).await?;
    let unchanged = |reason: String| StageFail::Reject {
        status: "skipped",
        reason: format!("unchanged since the last good import ({reason})"),
    };
    if let (Some(v), Some(prev), false) = (&version, &previous, force)
        && prev.catalogue_version.as_ref() == Some(v)
    {
        // The catalogue says the file is the one last imported: nothing is downloaded.
        return Err(unchanged(format!("catalogue {v}")));
    }
    // A local file is hashed up front, so an unchanged file is skipped before any staging.
    if let (
        Location::File(path),
        Some(GoodFile {
            checksum: Some(prev_sum),
            ..
        }),
        false,
    ) = (&location, &previous, force)
    {
        let sum = file_checksum(path).await.map_err(|e| SyncError::Source {
            url: source.url.clone(),
            message: e.to_string(),
        })?;
        if &sum == prev_sum {
            return Err(unchanged(format!("sha256 {sum}")));
        }
    }
    let Opened {
        reader,
        etag,
        length,
    } = open(ctx, &location, &source.url).await?;
    if let (
        Some(e),
        Some(GoodFile {
            etag: Some(prev_etag),
            ..
        }),
        false,
    ) = (&etag, &previous, force)
        && e == prev_etag
    {
        return Err(unchanged(format!("ETag {e}")));
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
    // csv reports the line of a record after a CRLF one as the line before (rust-csv #395):
    // a file whose header line ends in CRLF has its record lines counted one up.
    let crlf_fix = u64::from(first_line.ends_with(b"\r"));
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
    let mut header: Vec<String> = reader
        .byte_headers()
        .await
        .map_err(|e| reject(format!("unreadable header: {e}")))?
        .iter()
        .map(|h| text::decode(h).text.into_owned())
        .collect();
    // A trailing delimiter on the header line names no column.
    while header.len() > 1 && header.last().is_some_and(|h| h.trim().is_empty()) {
        header.pop();
    }
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
    let header_names: Vec<String> = header
        .iter()
        .map(|h| registry::normalize_header(h))
        .collect();

    let mut chunker = Chunker::new(ctx, run_id, file_id, dataset.name, &header)?;
    let mut check = FileCheck::default();
    let mut ordinals: HashMap<i64, u32> = HashMap::new();
    let mut record = csv_async::ByteRecord::new();
    let mut rows: i64 = 0;
    let outcome = loop {
        match reader.read_byte_record(&mut record).await {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => {
                break Err(format!(
                    "the file could not be read to its end (after {rows} records): {e}"
                ));
            }
        }
        let line = record.position().map_or(0, |p| p.line() + crlf_fix);
        if let Some(repaired) = check.repair(line, &record, header_names.len(), delimiter) {
            record = repaired;
        }
        if check.is_header_line(line, &record, &header_names) {
            continue;
        }
        check.predict(line, &record, dataset, &map);
        let key_values: Vec<Option<String>> = key_positions
            .iter()
            .map(|&(col, pos)| {
                let decoded = pos.and_then(|p| record.get(p)).map(text::decode);
                let raw = decoded
                    .as_ref()
                    .map(|d| d.text.as_ref())
                    .unwrap_or_default();
                registry::normalize(&dataset.columns[col], raw)
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
    };
    let outcome = match outcome {
        Ok(()) => chunker.flush().await.map_err(|e| e.to_string()),
        Err(reason) => Err(reason),
    };
    // Every upload has ended (and its chunk is recorded, or the file fails) before the verdict.
    let outcome = match (outcome, chunker.settle().await) {
        (Ok(()), Err(e)) => Err(e.to_string()),
        (outcome, _) => outcome,
    };
    drop(reader);
    let (checksum, bytes) = digest.finish();
    // The whole file has been read: is it fit to import? Nothing is queued until it is.
    let verdict = outcome.and_then(|()| {
        check.verdict(
            rows,
            bytes,
            length,
            previous.as_ref().map(|p| p.stored),
            &ctx.cfg.guards,
        )
    });
    if let Err(reason) = verdict {
        chunker.discard().await?;
        let mut tx = ctx.pool.begin().await?;
        let samples = check.samples();
        load::insert_issues(
            &mut tx,
            &issue_file(run_id, file_id, dataset, source),
            &samples,
        )
        .await?;
        tx.commit().await?;
        return Err(fail(reason));
    }
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
    crate::import::first_load::begin_if_empty(&mut tx, run_id, file_id, dataset).await?;
    load::insert_issues(
        &mut tx,
        &issue_file(run_id, file_id, dataset, source),
        &check.notes(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(file_id, dataset = dataset.name, rows, chunks, %checksum, extra = ?extra_columns,
                   repaired = check.repaired, headers_skipped = check.header_lines.len(), "file staged");
    // Queue the chunks. A chunk whose message cannot be sent is recorded as failed, so the
    // file still completes (as partial, withdrawing nothing) once the others are imported.
    if let Err((from_index, e)) = chunker.queue_all().await {
        let reason = format!("chunks {from_index}.. not queued: {e}");
        let mut tx = ctx.pool.begin().await?;
        let complete =
            repo::sync::fail_unqueued_chunks(&mut tx, file_id, from_index, &reason).await?;
        tx.commit().await?;
        tracing::error!(file_id, %reason, complete, "chunk messages not sent");
    }
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

fn issue_file<'a>(
    run_id: i64,
    file_id: i64,
    dataset: &'static Dataset,
    source: &'a Source,
) -> load::IssueFile<'a> {
    load::IssueFile {
        run_id,
        file_id,
        dataset: dataset.name,
        source_file: &source.url,
    }
}

/// How many unreadable lines are kept (with line and reason) when a file fails whole.
const FAILED_FILE_SAMPLES: usize = 100;

/// What the stager learns about a file while reading it: layout repairs, skipped header
/// lines, and the records the importer will have to quarantine (wrong field count, no
/// identifier), so that a file which is mostly unreadable fails before anything is queued.
#[derive(Default)]
struct FileCheck {
    /// Lines whose trailing empty fields beyond the header (trailing delimiters) were dropped.
    repaired: u64,
    first_repaired: Option<u64>,
    /// Lines that started with a byte order mark (removed).
    boms: Vec<u64>,
    /// Repeated header lines (skipped).
    header_lines: Vec<u64>,
    /// Records the importer will quarantine.
    unreadable: i64,
    /// The first of them, with the reason.
    unreadable_samples: Vec<DataIssue>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl FileCheck {
    /// Repairs what real re-exports do to a line, returning the repaired record: a BOM at
    /// the start of a line (concatenated downloads) and empty fields after the last column
    /// (a trailing delimiter) are not data.
    fn repair(
        &mut self,
        line: u64,
        record: &csv_async::ByteRecord,
        width: usize,
        delimiter: u8,
    ) -> Option<csv_async::ByteRecord> {
        let bom = record.get(0).is_some_and(|f| f.starts_with(BOM));
        let trailing = record.len() > width && record.iter().skip(width).all(|f| f.is_empty());
        if !bom && !trailing {
            return None;
        }
        let mut out = csv_async::ByteRecord::new();
        for (i, field) in record
            .iter()
            .enumerate()
            .take(if trailing { width } else { usize::MAX })
        {
            if i == 0 && bom {
                let rest = &field[BOM.len()..];
                // The BOM hid the opening quote from the CSV reader.
                match rest.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\"")) {
                    Some(inner) if delimiter == b',' => {
                        out.push_field(
                            &String::from_utf8_lossy(inner)
                                .replace("\"\"", "\"")
                                .into_bytes(),
                        );
                    }
                    _ => out.push_field(rest),
                }
            } else {
                out.push_field(field);
            }
        }
        if bom {
            self.boms.push(line);
        }
        if trailing {
            self.repaired += 1;
            self.first_repaired.get_or_insert(line);
        }
        Some(out)
    }

    /// A line that repeats the header (concatenated downloads) is skipped, never stored.
    fn is_header_line(
        &mut self,
        line: u64,
        record: &csv_async::ByteRecord,
        header_names: &[String],
    ) -> bool {
        let repeats = record.len() == header_names.len()
            && record
                .iter()
                .zip(header_names)
                .all(|(f, h)| registry::normalize_header(&text::decode(f).text) == *h);
        if repeats {
            self.header_lines.push(line);
            // The BOM came with the repeated header line: the line is skipped, not repaired.
            if self.boms.last() == Some(&line) {
                self.boms.pop();
            }
        }
        repeats
    }

    /// Counts a record the importer will quarantine (the same two rules as
    /// `import::parse_record`: the field count, and a value in every identifying column).
    fn predict(
        &mut self,
        line: u64,
        record: &csv_async::ByteRecord,
        dataset: &Dataset,
        map: &registry::HeaderMap,
    ) {
        let reason = if record.len() != map.width {
            Some(format!(
                "expected {} fields, found {}",
                map.width,
                record.len()
            ))
        } else {
            dataset
                .columns
                .iter()
                .zip(&map.positions)
                .filter(|(c, _)| c.not_null)
                .find(|(c, pos)| {
                    let raw = pos.and_then(|p| record.get(p)).map(text::decode);
                    !matches!(
                        registry::normalize(
                            c,
                            raw.as_ref().map(|d| d.text.as_ref()).unwrap_or_default()
                        ),
                        Ok(Some(_))
                    )
                })
                .map(|(c, _)| format!("{} is missing or unreadable", c.name.to_ascii_uppercase()))
        };
        let Some(reason) = reason else { return };
        self.unreadable += 1;
        if self.unreadable_samples.len() < FAILED_FILE_SAMPLES {
            let raw: Vec<String> = record
                .iter()
                .map(|f| text::decode(f).text.into_owned())
                .collect();
            self.unreadable_samples.push(DataIssue {
                line: i64::try_from(line).unwrap_or(i64::MAX),
                column: None,
                action: IssueAction::RowQuarantined,
                reason,
                value: None,
                raw: Some(raw.join(if record.len() > 1 { "," } else { "" })),
            });
        }
    }

    /// Whether the file, read to its end, may be imported.
    fn verdict(
        &self,
        rows: i64,
        bytes: u64,
        announced: Option<u64>,
        previous_stored: Option<i64>,
        guards: &super::Guards,
    ) -> Result<(), String> {
        if let Some(expected) = announced
            && bytes != expected
        {
            return Err(format!(
                "truncated download: {bytes} of the {expected} bytes announced were received"
            ));
        }
        let first = || {
            self.unreadable_samples
                .first()
                .map(|s| format!(" (first: line {}: {})", s.line, s.reason))
                .unwrap_or_default()
        };
        if rows > 0 && self.unreadable as f64 > guards.quarantine_max_share * rows as f64 {
            return Err(format!(
                "{} of {rows} records cannot be stored{}; more than {:.0}% unreadable \
                 (QUARANTINE_MAX_SHARE), so nothing of the file was imported",
                self.unreadable,
                first(),
                guards.quarantine_max_share * 100.0
            ));
        }
        let stored = rows - self.unreadable;
        if let Some(prev) = previous_stored
            && (stored as f64) < guards.collapse_min_share * prev as f64
        {
            return Err(format!(
                "the file would store {stored} records, less than {:.0}% of the {prev} of the last \
                 good file (COLLAPSE_MIN_SHARE){}; nothing of it was imported",
                guards.collapse_min_share * 100.0,
                if self.unreadable > 0 {
                    format!("; {} records unreadable{}", self.unreadable, first())
                } else {
                    String::new()
                }
            ));
        }
        Ok(())
    }

    /// Issues kept when the file fails whole: the first unreadable lines.
    fn samples(&self) -> Vec<DataIssue> {
        self.unreadable_samples.clone()
    }

    /// Issues of a file that is imported: skipped header lines, stray BOMs, one note for the
    /// trailing delimiters (the importer reports the quarantined records itself).
    fn notes(&self) -> Vec<DataIssue> {
        let at = |line: u64| i64::try_from(line).unwrap_or(i64::MAX);
        let mut notes: Vec<DataIssue> = self
            .header_lines
            .iter()
            .map(|&line| DataIssue {
                line: at(line),
                column: None,
                action: IssueAction::LineSkipped,
                reason: "repeated header line skipped".into(),
                value: None,
                raw: None,
            })
            .collect();
        notes.extend(self.boms.iter().map(|&line| DataIssue {
            line: at(line),
            column: None,
            action: IssueAction::LineRepaired,
            reason: "byte order mark at the start of the line removed".into(),
            value: None,
            raw: None,
        }));
        if let Some(first) = self.first_repaired {
            notes.push(DataIssue {
                line: at(first),
                column: None,
                action: IssueAction::LineRepaired,
                reason: format!(
                    "{} line(s), the first at line {first}, end with empty fields after the last \
                     column (trailing delimiter); the empty fields were dropped",
                    self.repaired
                ),
                value: None,
                raw: None,
            });
        }
        notes
    }
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
    /// Messages of the uploaded chunks, sent by [`Chunker::queue_all`] once the whole file
    /// has been read and found fit to import.
    messages: Vec<ChunkMessage>,
    /// The upload of the last chunk, which runs while the next one is read (one at a time:
    /// at most two chunks are in memory).
    uploading: Option<tokio::task::JoinHandle<Result<(), SyncError>>>,
}

/// A file that stops staging (an error) stops its upload in flight too.
impl Drop for Chunker<'_> {
    fn drop(&mut self) {
        if let Some(upload) = self.uploading.take() {
            upload.abort();
        }
    }
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
            messages: Vec::new(),
            uploading: None,
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

    /// Starts uploading the current chunk (if it has rows) once the previous upload ended, and
    /// starts the next chunk; its message is kept for [`Chunker::queue_all`]. The upload records
    /// the chunk when it lands; [`Chunker::settle`] waits for it.
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
        self.settle().await?;
        let (s3, pool, bucket) = (
            self.ctx.s3.clone(),
            self.ctx.pool.clone(),
            self.bucket.clone(),
        );
        let (file_id, index, rows, upload_key) =
            (self.file_id, self.index, self.rows as i64, key.clone());
        self.uploading = Some(tokio::spawn(async move {
            s3.put_object()
                .bucket(&bucket)
                .key(&upload_key)
                .content_type("text/csv")
                .body(body.into())
                .send()
                .await
                .map_err(|e| {
                    SyncError::s3("put chunk", aws_sdk_s3::error::DisplayErrorContext(e))
                })?;
            repo::sync::create_chunk(&pool, file_id, index, &upload_key, first_line, rows).await?;
            tracing::info!(file_id, chunk = index, rows, key = %upload_key, "chunk staged");
            Ok(())
        }));
        let message = ChunkMessage {
            run_id: self.run_id,
            file_id: self.file_id,
            dataset: self.dataset.to_owned(),
            bucket: self.bucket.clone(),
            key,
            chunk_index: self.index,
            first_line,
        };
        self.messages.push(message);
        self.index += 1;
        self.start()
    }

    /// Waits for the chunk upload in flight, if any.
    async fn settle(&mut self) -> Result<(), SyncError> {
        let Some(upload) = self.uploading.take() else {
            return Ok(());
        };
        upload.await.map_err(|e| SyncError::Chunk {
            key: format!("chunks/{}/{}/{}", self.run_id, self.dataset, self.file_id),
            message: format!("chunk upload did not finish: {e}"),
        })?
    }

    /// Sends one import message per uploaded chunk, in order; on failure, the index of the
    /// first chunk not queued.
    async fn queue_all(&self) -> Result<(), (i32, SyncError)> {
        for message in &self.messages {
            super::send_json(self.ctx, &self.queue_url, "send chunk", message)
                .await
                .map_err(|e| (message.chunk_index, e))?;
        }
        Ok(())
    }

    /// Forgets every chunk of a file that will not be imported: the bookkeeping rows, and
    /// (best effort; the bucket's lifecycle rule expires leftovers) the S3 objects.
    async fn discard(&self) -> Result<(), SyncError> {
        let keys = repo::sync::discard_chunks(&self.ctx.pool, self.file_id).await?;
        for key in keys {
            if let Err(e) = self
                .ctx
                .s3
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
            {
                tracing::warn!(%key, error = %aws_sdk_s3::error::DisplayErrorContext(e), "staged chunk not deleted");
            }
        }
        Ok(())
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
