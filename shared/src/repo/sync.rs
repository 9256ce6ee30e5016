//! Sync bookkeeping: runs, files, chunks.

use crate::import::Source;
use sqlx::{PgConnection, PgExecutor, Postgres, Transaction};

/// Starts a run; returns its id.
pub async fn create_run(db: impl PgExecutor<'_>, trigger: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into sync_run (trigger, status) values ($1, 'running') returning id",
        trigger
    )
    .fetch_one(db)
    .await
}

/// Registers one source file of a run.
pub async fn create_file(
    db: impl PgExecutor<'_>,
    run_id: i64,
    source: &Source,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into sync_file (run_id, dataset, source_url, scope, status)
         values ($1, $2, $3, $4, 'staging') returning id",
        run_id,
        &source.dataset,
        &source.url,
        source.scope.as_deref()
    )
    .fetch_one(db)
    .await
}

/// What is known of the last file of a dataset (and scope) that was imported completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodFile {
    /// SHA-256 of its bytes.
    pub checksum: Option<String>,
    pub etag: Option<String>,
    /// Its catalogue entry when it was staged (`manifest::Resolved::version`).
    pub catalogue_version: Option<String>,
    /// Rows it left stored (read less quarantined).
    pub stored: i64,
}

/// The last file of the dataset (and scope) that was imported completely.
pub async fn last_good_file(
    db: impl PgExecutor<'_>,
    dataset: &str,
    scope: Option<&str>,
) -> Result<Option<GoodFile>, sqlx::Error> {
    sqlx::query_as!(
        GoodFile,
        r#"select checksum, etag, catalogue_version, rows_read - rows_quarantined as "stored!" from sync_file
         where dataset = $1 and scope is not distinct from $2 and status = 'succeeded' and chunk_count is not null
         order by id desc limit 1"#,
        dataset,
        scope
    )
    .fetch_optional(db)
    .await
}

/// Records what the catalogue says of a file being staged (before it is read).
pub async fn set_catalogue_version(
    db: impl PgExecutor<'_>,
    file_id: i64,
    version: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update sync_file set catalogue_version = $2 where id = $1",
        file_id,
        version
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Ends a file without importing it (`rejected`, `skipped` or `failed`), with a reason.
pub async fn close_file(
    db: impl PgExecutor<'_>,
    file_id: i64,
    status: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update sync_file set status = $2, error = $3, finished_at = now() where id = $1",
        file_id,
        status,
        reason
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records a staged chunk before its message is sent (so the importer always finds it).
pub async fn create_chunk(
    db: impl PgExecutor<'_>,
    file_id: i64,
    chunk_index: i32,
    s3_key: &str,
    first_line: i64,
    rows: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into import_chunk (file_id, chunk_index, s3_key, first_line, status, rows_read)
         values ($1, $2, $3, $4, 'pending', $5)
         on conflict (file_id, chunk_index) do nothing",
        file_id,
        chunk_index,
        s3_key,
        first_line,
        i32::try_from(rows).unwrap_or(i32::MAX)
    )
    .execute(db)
    .await?;
    Ok(())
}

/// What staging learned about a file.
pub struct StagedFile<'a> {
    pub file_id: i64,
    pub chunk_count: i32,
    pub rows_read: i64,
    pub bytes: i64,
    pub checksum: &'a str,
    pub etag: Option<&'a str>,
    pub header: &'a [String],
    pub extra_columns: &'a [String],
}

/// Marks staging of a file finished. Returns `true` when every chunk is already imported
/// (then the caller completes the file).
pub async fn finish_staging(
    tx: &mut Transaction<'_, Postgres>,
    f: &StagedFile<'_>,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query!(
        r#"update sync_file set chunk_count = $2, rows_read = $3, bytes = $4, checksum = $5, etag = $6,
                header = $7, extra_columns = $8,
                -- Workers may have imported every chunk before the stager gets here.
                status = case when chunks_done >= $2 then 'imported' else 'importing' end
         where id = $1 returning chunks_done, chunk_count as "chunk_count!""#,
        f.file_id,
        f.chunk_count,
        f.rows_read,
        f.bytes,
        f.checksum,
        f.etag,
        f.header,
        f.extra_columns
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.chunks_done == row.chunk_count)
}

/// Marks staging of the whole run finished.
pub async fn finish_run_staging(db: impl PgExecutor<'_>, run_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update sync_run set stage_finished_at = now() where id = $1",
        run_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Decides, exactly once per run, that the run is ready to finalize: staging has finished
/// and no file is still staging or importing. Locks the run row so concurrent chunk
/// completions and the stager agree. Returns `true` to the single caller that should
/// request finalization.
pub async fn claim_finalize(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
) -> Result<bool, sqlx::Error> {
    let staged = sqlx::query_scalar!(
        "select stage_finished_at from sync_run where id = $1 for update",
        run_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    if !matches!(staged, Some(Some(_))) {
        return Ok(false);
    }
    let busy: i64 = sqlx::query_scalar!(
        r#"select count(*) as "n!" from sync_file where run_id = $1 and status in ('staging', 'importing')"#,
        run_id
    )
    .fetch_one(&mut **tx)
    .await?;
    if busy > 0 {
        return Ok(false);
    }
    let claimed = sqlx::query!("update sync_run set finalize_requested_at = now() where id = $1 and finalize_requested_at is null", run_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// Closes the runs that are still open `minutes` after they started (a stage that died, a
/// chunk lost without a DLQ record): the run ends `failed` with the reason, files that were
/// still staging or importing end `failed`, files whose rows all landed end `partial` (nothing
/// was withdrawn), and chunks still pending are marked failed so a late delivery changes
/// nothing. Returns the ids of the runs closed.
pub async fn close_stale_runs(
    tx: &mut Transaction<'_, Postgres>,
    by_run: i64,
    minutes: u32,
) -> Result<Vec<i64>, sqlx::Error> {
    let reason = format!("closed by run {by_run}: not finished within {minutes} minutes");
    let runs: Vec<i64> = sqlx::query_scalar!(
        "update sync_run
            set status = 'failed', finished_at = now(),
                finalize_requested_at = coalesce(finalize_requested_at, now()),
                error = left(coalesce(error || '; ', '') || $3, 4000)
          where finished_at is null and id <> $1
            and started_at < now() - make_interval(mins => $2)
          returning id",
        by_run,
        i32::try_from(minutes).unwrap_or(i32::MAX),
        &reason
    )
    .fetch_all(&mut **tx)
    .await?;
    if runs.is_empty() {
        return Ok(runs);
    }
    sqlx::query!(
        "update import_chunk c set status = 'failed', error = $2, finished_at = now()
           from sync_file f
          where f.id = c.file_id and f.run_id = any($1) and c.status = 'pending'",
        &runs,
        &reason
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "update sync_file
            set status = case when status = 'imported' then 'partial' else 'failed' end,
                error = left(coalesce(error || '; ', '')
                             || case when status = 'imported' then $2 || '; nothing withdrawn'
                                     else $2 end, 4000),
                finished_at = now()
          where run_id = any($1) and status in ('staging', 'importing', 'imported')",
        &runs,
        &reason
    )
    .execute(&mut **tx)
    .await?;
    Ok(runs)
}

/// Forgets the chunks of a file that will not be imported; returns their S3 keys.
pub async fn discard_chunks(
    db: impl PgExecutor<'_>,
    file_id: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "delete from import_chunk where file_id = $1 returning s3_key",
        file_id
    )
    .fetch_all(db)
    .await
}

/// Records chunks `from_index..` of a file as failed (their messages could not be queued),
/// counting them as done so the file still completes, as `partial`, once the queued chunks
/// are imported. Returns whether the file is now complete.
pub async fn fail_unqueued_chunks(
    tx: &mut Transaction<'_, Postgres>,
    file_id: i64,
    from_index: i32,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let failed = sqlx::query!(
        "update import_chunk set status = 'failed', error = $3, finished_at = now()
          where file_id = $1 and chunk_index >= $2 and status = 'pending'",
        file_id,
        from_index,
        reason
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query_scalar!(
        r#"update sync_file set chunks_done = chunks_done + $2,
                error = left(coalesce(error || '; ', '') || $3, 4000),
                status = case when chunk_count <= chunks_done + $2 then 'imported' else status end
          where id = $1 returning status = 'imported' as "complete!""#,
        file_id,
        i32::try_from(failed).unwrap_or(i32::MAX),
        reason
    )
    .fetch_one(&mut **tx)
    .await
}

/// A chunk's bookkeeping row, locked for the rest of the transaction.
pub struct LockedChunk {
    pub id: i64,
    /// `pending`, `done` or `failed`.
    pub status: String,
    /// The source file (URL) the chunk came from.
    pub source_url: String,
    /// The file is its dataset's first load (`crate::import::first_load`).
    pub first_load: bool,
}

/// Locks the bookkeeping row of chunk `chunk_index` of file `file_id` (a redelivered message
/// waits for the delivery that holds it, then finds it done).
pub async fn lock_chunk(
    tx: &mut Transaction<'_, Postgres>,
    file_id: i64,
    chunk_index: i32,
) -> Result<Option<LockedChunk>, sqlx::Error> {
    sqlx::query_as!(
        LockedChunk,
        "select c.id, c.status, f.source_url, f.first_load from import_chunk c join sync_file f on f.id = c.file_id
         where c.file_id = $1 and c.chunk_index = $2 for update of c",
        file_id,
        chunk_index
    )
    .fetch_optional(&mut **tx)
    .await
}

/// Marks a locked chunk imported, with its counts and how long it took.
pub async fn chunk_done(
    tx: &mut Transaction<'_, Postgres>,
    chunk_id: i64,
    counts: &crate::import::load::LoadCounts,
    duration_ms: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!("update import_chunk set status = 'done', attempts = attempts + 1, rows_read = $2,
                rows_inserted = $3, rows_updated = $4, rows_unchanged = $5, rows_quarantined = $6,
                duration_ms = $7::int, error = null, started_at = now() - make_interval(secs => $7::int / 1000.0),
                finished_at = now()
         where id = $1", chunk_id, counts.read as i32, counts.inserted as i32, counts.updated as i32, counts.unchanged as i32, counts.quarantined as i32, duration_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks a pending chunk failed after `attempts` deliveries; `false` when it was not pending
/// (done, or already given up on).
pub async fn chunk_failed(
    tx: &mut Transaction<'_, Postgres>,
    file_id: i64,
    chunk_index: i32,
    attempts: i32,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let marked = sqlx::query!(
        "update import_chunk set status = 'failed', attempts = $3, error = $4, finished_at = now()
         where file_id = $1 and chunk_index = $2 and status = 'pending'",
        file_id,
        chunk_index,
        attempts,
        reason
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(marked == 1)
}

/// Counts one more chunk of file `file_id` as finished: imported with `counts`, or failed with
/// `error` (added to the file's error). Returns whether that was the file's last chunk (the
/// file is then `imported`).
pub async fn count_chunk(
    tx: &mut Transaction<'_, Postgres>,
    file_id: i64,
    counts: &crate::import::load::LoadCounts,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update sync_file set chunks_done = chunks_done + 1,
                rows_inserted = rows_inserted + $2, rows_updated = rows_updated + $3,
                rows_unchanged = rows_unchanged + $4, rows_quarantined = rows_quarantined + $5,
                error = case when $6::text is null then error
                             else left(coalesce(error || '; ', '') || $6, 4000) end,
                status = case when chunk_count = chunks_done + 1 then 'imported' else status end
         where id = $1 returning status = 'imported' as "complete!""#,
        file_id,
        counts.inserted as i64,
        counts.updated as i64,
        counts.unchanged as i64,
        counts.quarantined as i64,
        error
    )
    .fetch_one(&mut **tx)
    .await
}

/// Whether run `run_id` gives the finishing steps nothing new: its files changed no row (none
/// inserted, updated, withdrawn or quarantined), the run before it was published, and the
/// facility linker's last run succeeded (a failed one catches up on the next run that links).
pub async fn changed_nothing(pool: &sqlx::PgPool, run_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select (coalesce(sum(f.rows_inserted + f.rows_updated + f.rows_withdrawn
                                + f.rows_quarantined), 0) = 0
                   and coalesce((select p.published_at is not null from sync_run p
                                  where p.id < $1 order by p.id desc limit 1), false)
                   and coalesce((select l.status = 'succeeded' from facility_link_run l
                                  order by l.id desc limit 1), false)) as "v!"
             from sync_file f where f.run_id = $1"#,
        run_id
    )
    .fetch_one(pool)
    .await
}

/// Whether the violation engine's runs for sync run `run_id` all succeeded and changed no event
/// and wrote no sample (`false` without any: an engine run that died rolled back with its
/// record).
pub async fn engine_changed_nothing(pool: &sqlx::PgPool, run_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select coalesce(bool_and(status = 'succeeded'
                                    and coalesce(events_new, 0) + coalesce(events_updated, 0)
                                        + coalesce(events_escalated, 0)
                                        + coalesce(events_retracted, 0) = 0
                                    and coalesce(samples, 0) = 0), false) as "v!"
             from violation_engine_run where sync_run_id = $1"#,
        run_id
    )
    .fetch_one(pool)
    .await
}

/// The advisory-lock class of a file being staged (with the file id as the object).
const STAGE_LOCK_CLASS: i32 = 0x5354_4746; // "STGF"

/// The lock key of a file: ids beyond `i32::MAX` wrap (two files whose ids differ by a
/// multiple of it share a lock, which only serializes them).
fn stage_lock_key(file_id: i64) -> i32 {
    i32::try_from(file_id.rem_euclid(i64::from(i32::MAX))).unwrap_or_default()
}

/// Takes the session lock that says a delivery is staging `file_id`; `false` when another
/// session holds it. Released by [`unlock_file`] or when the session ends.
pub async fn try_lock_file(conn: &mut PgConnection, file_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select pg_try_advisory_lock($1, $2) as "held!""#,
        STAGE_LOCK_CLASS,
        stage_lock_key(file_id)
    )
    .fetch_one(conn)
    .await
}

/// Releases the lock of [`try_lock_file`].
pub async fn unlock_file(conn: &mut PgConnection, file_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!(
        r#"select pg_advisory_unlock($1, $2) as "released!""#,
        STAGE_LOCK_CLASS,
        stage_lock_key(file_id)
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// The status of a file (`None`: no such file).
pub async fn file_status(
    db: impl PgExecutor<'_>,
    file_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("select status from sync_file where id = $1", file_id)
        .fetch_optional(db)
        .await
}

/// Records when the staging of a file ended and how long its invocation took.
pub async fn record_staged(
    db: impl PgExecutor<'_>,
    file_id: i64,
    stage_ms: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update sync_file set staged_at = now(), stage_ms = $2 where id = $1",
        file_id,
        stage_ms
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A chunk recorded for import and not yet imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChunk {
    pub chunk_index: i32,
    pub s3_key: String,
    pub first_line: i64,
}

/// The chunks of a file still pending, in order.
pub async fn pending_chunks(
    db: impl PgExecutor<'_>,
    file_id: i64,
) -> Result<Vec<PendingChunk>, sqlx::Error> {
    sqlx::query_as!(
        PendingChunk,
        "select chunk_index, s3_key, first_line from import_chunk
          where file_id = $1 and status = 'pending' order by chunk_index",
        file_id
    )
    .fetch_all(db)
    .await
}

/// Records a file that could not be staged as failed, if it is still staging (its chunks,
/// never queued, are forgotten). Returns whether it was.
pub async fn fail_staging_file(
    pool: &sqlx::PgPool,
    file_id: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let failed = sqlx::query!(
        "update sync_file set status = 'failed', error = $2, finished_at = now()
          where id = $1 and status = 'staging'",
        file_id,
        reason
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if failed {
        discard_chunks(&mut *tx, file_id).await?;
    }
    tx.commit().await?;
    Ok(failed)
}

/// One file of a run as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFile {
    pub id: i64,
    pub dataset: String,
    pub source_url: String,
    pub status: String,
    pub rows_read: i64,
    pub chunk_count: Option<i32>,
    pub error: Option<String>,
}

/// The files of a run, in the order they were recorded.
pub async fn files_of_run(
    db: impl PgExecutor<'_>,
    run_id: i64,
) -> Result<Vec<RunFile>, sqlx::Error> {
    sqlx::query_as!(
        RunFile,
        "select id, dataset, source_url, status, rows_read, chunk_count, error
           from sync_file where run_id = $1 order by id",
        run_id
    )
    .fetch_all(db)
    .await
}
