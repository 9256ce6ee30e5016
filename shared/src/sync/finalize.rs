//! `sync-finalize`: runs once per sync run, after its last chunk. For each imported file it
//! marks rows that disappeared from the source as withdrawn (never deleting them), closes the
//! run, runs the violation engine over what changed, starts a new cache generation and asks the
//! alert-dispatch function to run.

use super::{Context, FinalizeMessage, SyncError};
use crate::api::publish::{Rebuild, Timings, ms_since, timed};
use crate::import::registry;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Postgres, Transaction};

/// The hand-off to finalize: sends the run's finalize message if this caller (the stager, or
/// the importer of a file's last chunk) is the one that completed the run.
pub(crate) async fn request_if_ready(ctx: &Context, run_id: i64) -> Result<(), SyncError> {
    let mut tx = ctx.pool.begin().await?;
    let claimed = crate::repo::sync::claim_finalize(&mut tx, run_id).await?;
    tx.commit().await?;
    if claimed {
        send_finalize(ctx, run_id).await?;
    }
    Ok(())
}

/// Queues the (deduplicated) finalize message for a run.
async fn send_finalize(ctx: &Context, run_id: i64) -> Result<(), SyncError> {
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

/// What finalizing one file did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFinal {
    pub file_id: i64,
    pub dataset: String,
    pub status: String,
    pub withdrawn: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a finalize invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FinalizeOutcome {
    Finalized {
        run_id: i64,
        status: String,
        files: Vec<FileFinal>,
        links: Option<super::links::LinkCounts>,
        /// The facility linker's report; `None` when it failed (recorded in
        /// `facility_link_run`; the next run catches up) or did not run (the run changed no
        /// row: `repo::sync::changed_nothing`).
        facility_links: Option<Box<crate::linking::Report>>,
        /// The violation engine's report; `None` when it failed (recorded in
        /// `violation_engine_run`; the next run or the violations-compute function catches up).
        violations: Option<crate::violations::engine::Report>,
    },
    /// Another invocation finalized this run already.
    AlreadyFinalized { run_id: i64 },
}

/// Handles a finalize-queue batch (batch size 1 in the template; any size works).
pub async fn handle(ctx: &Context, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let result = match serde_json::from_str::<FinalizeMessage>(
            message.body.as_deref().unwrap_or_default(),
        ) {
            Ok(m) => finalize_run(ctx, m.run_id).await.map(|_| ()),
            Err(e) => Err(SyncError::Message(e.to_string())),
        };
        if let Err(e) = result {
            tracing::error!(message_id = %id, error = %e, "finalize failed");
            response.add_failure(id);
        }
    }
    response
}

/// Finalizes a run exactly once: the run row is locked and `finished_at` is the guard.
#[tracing::instrument(skip(ctx))]
pub async fn finalize_run(ctx: &Context, run_id: i64) -> Result<FinalizeOutcome, SyncError> {
    let started = std::time::Instant::now();
    let mut tx = ctx.pool.begin().await?;
    let finished: Option<Option<chrono::DateTime<chrono::Utc>>> = sqlx::query_scalar!(
        "select finished_at from sync_run where id = $1 for update",
        run_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    match finished {
        None => return Err(SyncError::Message(format!("no sync run {run_id}"))),
        Some(Some(_)) => {
            tx.commit().await?;
            tracing::info!(run_id, "run already finalized");
            return Ok(FinalizeOutcome::AlreadyFinalized { run_id });
        }
        Some(None) => {}
    }
    let files = sqlx::query!(
        "select id, dataset, status, error, first_load from sync_file where run_id = $1 order by id",
        run_id
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut finals = Vec::with_capacity(files.len());
    let mut indexes_ms = 0;
    for f in files {
        let (file_id, dataset, status, error) = (f.id, f.dataset, f.status, f.error);
        // A first load's indexes are built now that every chunk is in, whatever became of the file.
        let first_load = if f.first_load {
            let started = std::time::Instant::now();
            let built = rebuild_indexes(ctx, file_id, &dataset).await;
            indexes_ms += ms_since(started);
            Some(built)
        } else {
            None
        };
        let done = if status == "imported" {
            finalize_file(&mut tx, ctx, file_id, &dataset, first_load).await?
        } else {
            FileFinal {
                file_id,
                dataset,
                status,
                withdrawn: 0,
                note: error,
            }
        };
        finals.push(done);
    }
    let ok = finals
        .iter()
        .all(|f| matches!(f.status.as_str(), "succeeded" | "skipped"));
    let any_ok = finals
        .iter()
        .any(|f| matches!(f.status.as_str(), "succeeded" | "skipped" | "partial"));
    // Every file failed or was rejected: the run failed. Some did: partial, with the reasons.
    let run_status = match (ok, any_ok) {
        (true, _) => "succeeded",
        (false, true) => "partial",
        (false, false) => "failed",
    };
    let relinks = finals.iter().any(|f| {
        matches!(f.status.as_str(), "succeeded" | "partial")
            && super::links::LINKED_DATASETS.contains(&f.dataset.as_str())
    });
    let links = if relinks {
        Some(super::links::rebuild(&mut tx, run_id).await?)
    } else {
        None
    };
    let problems: Vec<String> = finals
        .iter()
        .filter(|f| !matches!(f.status.as_str(), "succeeded" | "skipped"))
        .map(|f| {
            let why = f.note.as_deref().unwrap_or("see sync_file.error");
            format!("{} {}: {why}", f.dataset, f.status)
        })
        .collect();
    sqlx::query!("update sync_run set status = $2, finished_at = now(), notes = $3, error = $4 where id = $1", run_id, run_status, serde_json::json!({ "links": links }).to_string(), (!problems.is_empty()).then(|| problems.join("; ")))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // What each step after the files took (milliseconds), noted on the run with its
    // publication time: the files' own step (withdrawals, derived links) comes first.
    let mut timings: Timings = vec![
        ("indexes", indexes_ms),
        ("files", ms_since(started).saturating_sub(indexes_ms)),
    ];
    let loaded: Vec<&str> = finals
        .iter()
        .filter(|f| matches!(f.status.as_str(), "succeeded" | "partial"))
        .filter_map(|f| crate::import::registry::dataset(&f.dataset).map(|d| d.table))
        .collect();
    timed(&mut timings, "analyze", analyze(&ctx.pool, &loaded)).await;
    // A run that changed nothing neither links nor rebuilds what nothing changed (the engine
    // still runs: it catches up on anything an earlier run left).
    let quiet = crate::repo::sync::changed_nothing(&ctx.pool, run_id)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(run_id, error = %e, "could not tell whether the run changed anything");
            false
        });
    let facility_links = if quiet {
        tracing::info!(run_id, "no row changed: facility linking skipped");
        None
    } else {
        let links = timed(&mut timings, "linking", link_facilities(ctx, run_id)).await;
        timed(
            &mut timings,
            "analyze_links",
            analyze(&ctx.pool, &["facility", "facility_link"]),
        )
        .await;
        links
    };
    // A failed engine run does not undo the finalized run: it is recorded, and the engine's
    // watermark makes the next run pick the rows up. Without stored dashboards the dashboard
    // computes live; the next run stores them again.
    let mut opts = crate::violations::engine::Options::new("finalize", ctx.cfg.nd_policy);
    opts.sync_run_id = Some(run_id);
    opts.up_to_run = Some(run_id);
    let rebuild = if quiet {
        Rebuild::UnlessUnchanged
    } else {
        Rebuild::All
    };
    let published = crate::api::publish::publish(&ctx.pool, &ctx.cache, &opts, rebuild).await;
    timings.extend(published.timings.iter().copied());
    let violations = published.violations.ok();
    let generation = published.generation;
    let preloaded = timed(&mut timings, "preload", async {
        if generation.is_none() {
            return 0;
        }
        let api = crate::api::ApiState::new(
            ctx.pool.clone(),
            ctx.cache.clone(),
            crate::api::WriteSettings::from_config(&ctx.cfg),
        );
        crate::api::preload::hot_keys(&api).await
    })
    .await;
    timings.push(("total", ms_since(started)));
    let timings: serde_json::Map<String, serde_json::Value> = timings
        .into_iter()
        .map(|(step, ms)| (step.to_owned(), ms.into()))
        .collect();
    // Whoever waits for the run to be served waits for this (each step above records its own
    // failure). If this update fails, the run shows no publication time; the error is logged.
    if let Err(e) = sqlx::query!(
        "update sync_run
            set published_at = now(),
                notes = (coalesce(notes, '{}')::jsonb
                         || jsonb_build_object('finalizeMs', $2::jsonb))::text
          where id = $1",
        run_id,
        serde_json::Value::Object(timings)
    )
    .execute(&ctx.pool)
    .await
    {
        tracing::error!(run_id, error = %e, "the run's publication time not recorded");
    }
    request_alert_dispatch(ctx, run_id).await;
    tracing::info!(
        run_id,
        status = run_status,
        ?generation,
        preloaded,
        "run finalized"
    );
    Ok(FinalizeOutcome::Finalized {
        run_id,
        status: run_status.into(),
        files: finals,
        links,
        facility_links,
        violations,
    })
}

/// Links facilities for what the run changed (before the engine, which then computes events
/// for the linked facilities), and adds the counts to the run's notes. A failure does not undo
/// the finalized run: it is recorded, and the next run catches up.
/// Refreshes the planner's statistics of `tables` (bulk loads outrun autovacuum: a plan made
/// before it has looked at a freshly loaded table can scan it once per row of another). A
/// failure is logged; the statistics then follow with autovacuum.
async fn analyze(pool: &sqlx::PgPool, tables: &[&str]) {
    if tables.is_empty() {
        return;
    }
    // Runtime SQL: the table names come from the dataset registry and this module, never
    // from a request.
    let sql = format!("analyze {}", tables.join(", "));
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await {
        tracing::warn!(error = %e, ?tables, "analyze after the load failed");
    }
}

async fn link_facilities(ctx: &Context, run_id: i64) -> Option<Box<crate::linking::Report>> {
    let mut opts = crate::linking::Options::new("finalize", ctx.cfg.link);
    opts.sync_run_id = Some(run_id);
    match crate::linking::run_recorded(&ctx.pool, &opts).await {
        Ok(report) => {
            let noted = sqlx::query!(
                "update sync_run
                    set notes = (coalesce(notes, '{}')::jsonb
                                 || jsonb_build_object('facilityLinks', $2::jsonb))::text
                  where id = $1",
                run_id,
                serde_json::to_value(&report).unwrap_or_default()
            )
            .execute(&ctx.pool)
            .await;
            if let Err(e) = noted {
                tracing::error!(run_id, error = %e, "facility link counts not noted on the run");
            }
            Some(Box::new(report))
        }
        Err(_) => None,
    }
}

/// Asks alert-dispatch to run (a message on ALERT_QUEUE_URL). Without the queue, or when the
/// send fails, alerts wait for the next dispatch; nothing is lost (the outbox is idempotent).
async fn request_alert_dispatch(ctx: &Context, run_id: i64) {
    let Some(queue) = ctx.cfg.alert_queue_url() else {
        tracing::info!(
            run_id,
            "ALERT_QUEUE_URL not set; alert dispatch not requested"
        );
        return;
    };
    let sent = ctx
        .sqs
        .send_message()
        .queue_url(queue)
        .message_body(serde_json::json!({ "runId": run_id }).to_string())
        .send()
        .await;
    if let Err(e) = sent {
        tracing::warn!(run_id, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "alert dispatch request not sent");
    }
}

/// A file that was its dataset's first load (`crate::import::first_load`): there is nothing to
/// withdraw; `unindexed` says why its table's indexes could not be rebuilt.
struct FirstLoad {
    unindexed: Option<String>,
}

/// Rebuilds the indexes a first load of `dataset` deferred; a failure is logged and noted on
/// the file (the next staging of the table retries).
async fn rebuild_indexes(ctx: &Context, file_id: i64, dataset: &str) -> FirstLoad {
    let Some(table) = registry::dataset(dataset).map(|d| d.table) else {
        return FirstLoad { unindexed: None };
    };
    let unindexed = match crate::import::first_load::rebuild_indexes(&ctx.pool, table).await {
        Ok(_) => None,
        Err(e) => {
            tracing::error!(file_id, table, error = %e, "deferred indexes not rebuilt");
            Some(format!(
                "indexes of {table} not rebuilt (the next staging retries): {e}"
            ))
        }
    };
    FirstLoad { unindexed }
}

/// Withdraws the rows of `dataset` that the file no longer contains — unless the evidence
/// is doubtful: the seen-set must account for every stored row (it is an unlogged table,
/// emptied by a server crash), and the file must not be much smaller than the last good one.
/// A first load withdraws nothing (the table was empty) and kept no seen-set.
async fn finalize_file(
    tx: &mut Transaction<'_, Postgres>,
    ctx: &Context,
    file_id: i64,
    dataset_name: &str,
    first_load: Option<FirstLoad>,
) -> Result<FileFinal, SyncError> {
    let Some(dataset) = registry::dataset(dataset_name) else {
        return Err(SyncError::Message(format!(
            "unknown dataset {dataset_name:?}"
        )));
    };
    // Rows of failed chunks are neither stored nor quarantined: they are not in `stored`.
    let counts = sqlx::query!(
        r#"select f.rows_read - coalesce((select sum(c.rows_read) from import_chunk c
                                         where c.file_id = f.id and c.status = 'failed'), 0)::bigint
                  as "rows_read!",
                f.rows_quarantined
           from sync_file f where f.id = $1"#,
        file_id
    )
    .fetch_one(&mut **tx)
    .await?;
    let (rows_read, quarantined) = (counts.rows_read, counts.rows_quarantined);
    let seen: i64 = sqlx::query_scalar!(
        r#"select count(*) as "v!" from import_seen where file_id = $1"#,
        file_id
    )
    .fetch_one(&mut **tx)
    .await?;
    let previous: Option<i64> = sqlx::query_scalar!(
        r#"select p.rows_read - p.rows_quarantined as "v!" from sync_file p, sync_file f
          where f.id = $2 and p.dataset = $1 and p.scope is not distinct from f.scope
            and p.status = 'succeeded' and p.id <> $2
          order by p.id desc limit 1"#,
        dataset_name,
        file_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    let stored = rows_read - quarantined;
    let failed: Option<String> = sqlx::query_scalar!("select string_agg(error, '; ' order by chunk_index) from import_chunk where file_id = $1 and status = 'failed'", file_id)
    .fetch_one(&mut **tx)
    .await?;
    let min_share = ctx.cfg.guards.withdraw_min_share;
    let scope: Option<String> =
        sqlx::query_scalar!("select scope from sync_file where id = $1", file_id)
            .fetch_one(&mut **tx)
            .await?;
    let note = if let (Some(scope), None) = (&scope, dataset.merge.scope_filter) {
        // A dataset published whole has no rule for which rows a part covers.
        Some(format!(
            "withdrawal skipped: the file is declared as part {scope:?} of a dataset published whole; a partial extract adds and updates rows, it never withdraws"
        ))
    } else if let Some(failed) = failed {
        Some(format!("withdrawal skipped: {failed}"))
    } else if let Some(first) = &first_load {
        first.unindexed.clone()
    } else if seen != stored {
        Some(format!(
            "withdrawal skipped: {seen} keys seen but {stored} rows stored (seen-set incomplete)"
        ))
    } else {
        previous
            .filter(|&p| (stored as f64) < min_share * p as f64)
            .map(|p| {
                format!(
                    "withdrawal skipped: {stored} rows stored is less than {:.0}% of the {p} of the previous good file (WITHDRAW_MIN_SHARE)",
                    min_share * 100.0,
                )
            })
    };
    let (withdrawn, kept) = if note.is_none() && first_load.is_none() {
        withdraw(tx, dataset, file_id, quarantined > 0).await?
    } else {
        (0, 0)
    };
    // Records whose identifier occurs in a line that could not be read are not provably gone.
    let kept_note = (kept > 0).then(|| {
        format!(
            "{kept} record(s) not withdrawn: their identifier occurs in one of the {quarantined} line(s) that could not be read"
        )
    });
    let status = if note.is_none() {
        "succeeded"
    } else {
        "partial"
    };
    sqlx::query!("update sync_file set status = $2, rows_withdrawn = $3, error = coalesce($4, error), finished_at = now()
         where id = $1", file_id, status, withdrawn as i64, note.as_deref().or(kept_note.as_deref()))
    .execute(&mut **tx)
    .await?;
    sqlx::query!("delete from import_seen where file_id = $1", file_id)
        .execute(&mut **tx)
        .await?;
    Ok(FileFinal {
        file_id,
        dataset: dataset_name.to_owned(),
        status: status.into(),
        withdrawn,
        note: note.or(kept_note),
    })
}

/// Marks the rows of the dataset the file did not contain as withdrawn; returns how many, and
/// how many were kept because a quarantined line of the file may be them. With quarantined
/// lines, a row is withdrawn only when its identifying value (APP_ID; the eSMR facility) occurs
/// in none of them: a row that could not be read is never evidence that its record is gone.
async fn withdraw(
    tx: &mut Transaction<'_, Postgres>,
    dataset: &registry::Dataset,
    file_id: i64,
    any_quarantined: bool,
) -> Result<(u64, u64), SyncError> {
    let scope = match dataset.merge.scope_filter {
        Some(filter) => format!("(f.scope is null or {filter})"),
        None => "true".to_owned(),
    };
    let unseen = format!(
        "sync_file f
         where f.id = $1 and t.withdrawn_run_id is null and {scope}
           and not exists (select 1 from import_seen s
                            where s.file_id = $1 and s.row_key = t.row_key and s.row_ord = t.row_ord)"
    );
    let identity = dataset.identity_column();
    let unread = format!(
        "and not exists (select 1 from data_quality_issue q
                          where q.file_id = $1 and q.action = 'row_quarantined'
                            and (q.raw is null or strpos(q.raw, t.{identity}) > 0))"
    );
    // The anti-join must be a hash join: on a freshly loaded table the statistics still say
    // "empty", and a nested loop over millions of rows ran for many minutes (seen in the
    // violation benchmark on a new database).
    sqlx::query!("set local enable_nestloop = off")
        .execute(&mut **tx)
        .await?;
    let candidates: i64 = if any_quarantined {
        // Runtime SQL: table, scope and identity column come from the dataset registry.
        sqlx::query_scalar(AssertSqlSafe(format!(
            "select count(*) from {} t, {unseen}",
            dataset.table
        )))
        .bind(file_id)
        .fetch_one(&mut **tx)
        .await?
    } else {
        0
    };
    // The statement text depends on the dataset's table, scope and identity column, which are
    // compile-time constants of the registry.
    let n = sqlx::query(AssertSqlSafe(format!(
        "update {} t set withdrawn_run_id = f.run_id from {unseen} {}",
        dataset.table,
        if any_quarantined { unread.as_str() } else { "" }
    )))
    .bind(file_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query!("set local enable_nestloop = on")
        .execute(&mut **tx)
        .await?;
    let kept = if any_quarantined {
        u64::try_from(candidates).unwrap_or(0).saturating_sub(n)
    } else {
        0
    };
    Ok((n, kept))
}
