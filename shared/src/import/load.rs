//! COPY + set-based merge of one chunk into its dataset table.
//!
//! SQL here is built from the registry (table and column names are compile-time constants
//! from `registry`, never input), which is why it uses `sqlx::query` rather than the
//! checked macros: the statement text differs per dataset.

use super::LoadError;
use super::chunk::{ChunkSource, Parsed, chunk_header_map, parse_record};
pub use super::issue::{DataIssue, IssueAction};
use super::registry::{Dataset, Normalized};
use super::text::without_nul;
use serde::Serialize;
use sqlx::postgres::PgCopyIn;
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Transaction};
use tokio::io::AsyncRead;

/// Row counts of one chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LoadCounts {
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    /// Column-level issues (values nulled or flagged) on rows that were stored.
    pub value_issues: u64,
    /// Milliseconds spent reading, parsing and COPYing the chunk into the temporary table.
    pub copy_ms: u64,
    /// Milliseconds spent in the upsert into the dataset table.
    pub merge_ms: u64,
    /// Milliseconds spent recording seen keys and data-quality issues.
    pub bookkeeping_ms: u64,
}

/// Bytes buffered before each COPY `send` (bounded memory per chunk).
const COPY_BATCH: usize = 1 << 20;

fn staging_columns(dataset: &Dataset) -> String {
    dataset
        .columns
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads one chunk inside the caller's transaction; returns the counts.
pub async fn load_chunk(
    tx: &mut Transaction<'_, Postgres>,
    source: &ChunkSource<'_>,
    chunk: impl AsyncRead + Unpin + Send,
) -> Result<LoadCounts, LoadError> {
    let dataset = source.dataset;
    let started = std::time::Instant::now();
    let cols = staging_columns(dataset);
    // A temp table shaped like the target's data columns; dropped at commit.
    // Runtime SQL: the temporary table is shaped like the dataset's table (registry).
    sqlx::query(AssertSqlSafe(format!(
        "create temp table stage_rows on commit drop as
         select row_key, row_ord, row_hash, source_line, {cols} from {} with no data",
        dataset.table
    )))
    .execute(&mut **tx)
    .await?;
    let conn: &mut PgConnection = tx;
    let mut copy = conn
        .copy_in_raw(&format!(
            "copy stage_rows (row_key, row_ord, row_hash, source_line, {cols}) from stdin with (format csv)"
        ))
        .await?;
    let streamed = stream_rows(&mut copy, source, chunk).await;
    let (mut counts, issues) = match streamed {
        Ok(v) => v,
        Err(e) => {
            copy.abort(e.to_string()).await?;
            return Err(e);
        }
    };
    let copied = copy.finish().await?;
    let stored = counts.read - counts.quarantined;
    if copied != stored {
        return Err(LoadError::Chunk {
            key: source.s3_key.to_owned(),
            message: format!("COPY stored {copied} rows, expected {stored}"),
        });
    }
    counts.copy_ms = elapsed_ms(started);
    let merge_started = std::time::Instant::now();
    let (updated, inserted) = merge(tx, dataset, source.run_id, source.first_load).await?;
    counts.merge_ms = elapsed_ms(merge_started);
    let bookkeeping_started = std::time::Instant::now();
    counts.updated = updated;
    counts.inserted = inserted;
    counts.unchanged = stored - updated - inserted;
    // A first load keeps no seen-set: there is nothing to withdraw.
    if !source.first_load {
        // Runtime SQL: stage_rows is a temporary table of this transaction, which the build-time check cannot see.
        sqlx::query(
            "insert into import_seen (file_id, row_key, row_ord)
             select $1, row_key, row_ord from stage_rows",
        )
        .bind(source.file_id)
        .execute(&mut **tx)
        .await?;
    }
    let file = IssueFile {
        run_id: source.run_id,
        file_id: source.file_id,
        dataset: source.dataset.name,
        source_file: source.source_file,
    };
    insert_issues(tx, &file, &issues).await?;
    counts.bookkeeping_ms = elapsed_ms(bookkeeping_started);
    Ok(counts)
}

fn elapsed_ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn stream_rows(
    copy: &mut PgCopyIn<&mut PgConnection>,
    source: &ChunkSource<'_>,
    chunk: impl AsyncRead + Unpin + Send,
) -> Result<(LoadCounts, Vec<DataIssue>), LoadError> {
    let chunk_err = |message: String| LoadError::Chunk {
        key: source.s3_key.to_owned(),
        message,
    };
    let mut reader = csv_async::AsyncReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .create_reader(chunk);
    let header: Vec<String> = reader
        .byte_headers()
        .await
        .map_err(|e| chunk_err(e.to_string()))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    let map = chunk_header_map(source.dataset, &header).map_err(chunk_err)?;
    let mut counts = LoadCounts::default();
    let mut issues = Vec::new();
    let mut out = copy_writer();
    let mut record = csv_async::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .await
        .map_err(|e| chunk_err(e.to_string()))?
    {
        counts.read += 1;
        match parse_record(source.dataset, &map, &record).map_err(chunk_err)? {
            Parsed::Quarantined(issue) => {
                counts.quarantined += 1;
                issues.push(issue);
            }
            Parsed::Row {
                line,
                key,
                ord,
                values,
                issues: row_issues,
            } => {
                counts.value_issues += row_issues.len() as u64;
                issues.extend(row_issues);
                write_copy_row(&mut out, line, key, ord, &values)
                    .map_err(|e| chunk_err(e.to_string()))?;
                if out.get_ref().len() >= COPY_BATCH {
                    let full = std::mem::replace(&mut out, copy_writer());
                    copy.send(full.into_inner().map_err(|e| chunk_err(e.to_string()))?)
                        .await?;
                }
            }
        }
    }
    let rest = out.into_inner().map_err(|e| chunk_err(e.to_string()))?;
    if !rest.is_empty() {
        copy.send(rest).await?;
    }
    Ok((counts, issues))
}

fn copy_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::with_capacity(COPY_BATCH + 64 * 1024))
}

/// One COPY CSV row. NULL is an unquoted empty field; the parsers never produce empty
/// strings, so every empty field really is NULL.
fn write_copy_row(
    out: &mut csv::Writer<Vec<u8>>,
    line: i64,
    key: i64,
    ord: i32,
    values: &[Normalized],
) -> csv::Result<()> {
    let hash = super::registry::row_hash(values.iter().map(Option::as_deref));
    out.write_field(key.to_string())?;
    out.write_field(ord.to_string())?;
    out.write_field(format!("\\x{}", hex::encode(hash)))?;
    out.write_field(line.to_string())?;
    for v in values {
        out.write_field(v.as_deref().unwrap_or(""))?;
    }
    out.write_record(None::<&[u8]>)
}

/// Inserts new rows and updates changed (or previously withdrawn) ones; unchanged rows are
/// not written at all. A first load inserts every row. Returns `(updated, inserted)`.
async fn merge(
    tx: &mut Transaction<'_, Postgres>,
    dataset: &Dataset,
    run_id: i64,
    first_load: bool,
) -> Result<(u64, u64), LoadError> {
    for statement in dataset.merge.before {
        // Runtime SQL: the dataset's own merge statements (registry), run as declared.
        sqlx::query(AssertSqlSafe(*statement))
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
    }
    let derived = dataset.merge.derived;
    let cols = dataset
        .columns
        .iter()
        .map(|c| c.name)
        .chain(derived.iter().map(|(name, _)| *name))
        .collect::<Vec<_>>()
        .join(", ");
    let s_cols = dataset
        .columns
        .iter()
        .map(|c| format!("s.{}", c.name))
        .chain(derived.iter().map(|(_, expr)| (*expr).to_owned()))
        .collect::<Vec<_>>()
        .join(", ");
    let excluded = cols
        .split(", ")
        .map(|c| format!("excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let table = dataset.table;
    let insert = format!(
        "insert into {table} as t (row_key, row_ord, row_hash, source_line, first_run_id, changed_run_id, {cols})
         select s.row_key, s.row_ord, s.row_hash, s.source_line, $1, $1, {s_cols}
           from stage_rows s"
    );
    if first_load {
        // Runtime SQL: the insert is built from the dataset's table and columns (registry).
        let inserted = sqlx::query(AssertSqlSafe(insert))
            .bind(run_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        return Ok((0, inserted));
    }
    // One upsert: new keys insert; a key whose content changed (or that had been withdrawn)
    // updates; an unchanged row matches the conflict but fails the `where`, so it is not
    // written at all. `xmax = 0` tells inserted rows from updated ones. (Dropping the unchanged
    // rows from the batch first, with a read-only join, was measured no faster at full scale.)
    let sql = format!(
        "with m as (
            {insert}
            on conflict (row_key, row_ord) do update
               set ({cols}, row_hash, source_line, changed_run_id, withdrawn_run_id)
                 = ({excluded}, excluded.row_hash, excluded.source_line, $1, null)
             where t.row_hash <> excluded.row_hash or t.withdrawn_run_id is not null
            returning (t.xmax = 0) as inserted
         )
         select count(*) filter (where not inserted), count(*) filter (where inserted) from m"
    );
    // Runtime SQL: the merge is built from the dataset's table and columns (registry).
    let (updated, inserted): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql))
        .bind(run_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok((updated as u64, inserted as u64))
}

/// The file data-quality issues belong to.
pub struct IssueFile<'a> {
    pub run_id: i64,
    pub file_id: i64,
    pub dataset: &'a str,
    pub source_file: &'a str,
}

/// Stores data-quality issues of one file (text is stored without NUL, which Postgres refuses).
pub async fn insert_issues(
    tx: &mut Transaction<'_, Postgres>,
    source: &IssueFile<'_>,
    issues: &[DataIssue],
) -> Result<(), sqlx::Error> {
    if issues.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = issues.iter().map(|i| i.line).collect();
    let actions: Vec<&str> = issues.iter().map(|i| i.action.as_str()).collect();
    let reasons: Vec<String> = issues
        .iter()
        .map(|i| without_nul(&i.reason).into_owned())
        .collect();
    let values: Vec<Option<String>> = issues
        .iter()
        .map(|i| i.value.as_deref().map(|v| without_nul(v).into_owned()))
        .collect();
    let raws: Vec<Option<String>> = issues
        .iter()
        .map(|i| i.raw.as_deref().map(|v| without_nul(v).into_owned()))
        .collect();
    let columns: Vec<Option<String>> = issues
        .iter()
        .map(|i| i.column.as_deref().map(|v| without_nul(v).into_owned()))
        .collect();
    let source_file = without_nul(source.source_file);
    sqlx::query!("insert into data_quality_issue (run_id, file_id, dataset, source_file, line, column_name, action, reason, value, raw)
         select $1, $2, $3, $4, u.line, u.col, u.action, u.reason, u.value, u.raw
           from unnest($5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
                as u(line, col, action, reason, value, raw)", source.run_id, source.file_id, source.dataset, source_file.as_ref(), &lines, &columns as _, &actions as _, &reasons, &values as _, &raws as _)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
