//! `sync-finalize`: runs once per sync run, after its last chunk, as a chain of [`Step`]s, each
//! its own invocation (a message on the finalize queue, so each has Lambda's whole time limit).
//! The files step marks rows that disappeared from the source as withdrawn (never deleting
//! them) and closes the run; then facility linking, the violation engine over what changed,
//! and the publication: summaries, stored dashboards, a new cache generation, the preload and
//! the request to alert-dispatch.

use super::{Context, FinalizeMessage, SyncError};
use crate::api::publish::{Rebuild, Timings, ms_since, timed};
use crate::import::registry;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Postgres, Transaction};

/// The steps of a run's finalize, in the order they run. Each runs in an invocation of its own;
/// `sync_run.finalize_step` names the next one once the files step closed the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Builds a first load's deferred indexes, withdraws what the files no longer contain,
    /// rebuilds derived links and closes the run (`finished_at`).
    #[default]
    Files,
    /// Links facilities for what the run changed (skipped when it changed nothing).
    Link,
    /// Runs the violation engine over what changed.
    Engine,
    /// Refreshes summaries and stored dashboards, starts a new cache generation, preloads it,
    /// records `published_at` and asks alert-dispatch to run.
    Publish,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 4] = [Step::Files, Step::Link, Step::Engine, Step::Publish];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Files => "files",
            Step::Link => "link",
            Step::Engine => "engine",
            Step::Publish => "publish",
        }
    }

    /// The step after this one (`None` after the publication).
    pub fn next(self) -> Option<Step> {
        match self {
            Step::Files => Some(Step::Link),
            Step::Link => Some(Step::Engine),
            Step::Engine => Some(Step::Publish),
            Step::Publish => None,
        }
    }

    /// The step of this name (`as_str`).
    pub fn named(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The step a closed run waits for, from its `sync_run.finalize_step` (`None`: done; a run
    /// closed before the steps existed was published in one invocation).
    fn pending(run_id: i64, stored: Option<&str>) -> Result<Option<Step>, SyncError> {
        match stored.unwrap_or("done") {
            "done" => Ok(None),
            name => Step::named(name).map(Some).ok_or_else(|| {
                SyncError::Message(format!("run {run_id}: unknown finalize step {name:?}"))
            }),
        }
    }

    /// The value of `sync_run.finalize_step` once this step ran.
    fn stored_after(self) -> &'static str {
        self.next().map_or("done", Step::as_str)
    }
}

/// The hand-off to finalize: sends the run's finalize message if this caller (the stager, or
/// the importer of a file's last chunk) is the one that completed the run.
pub(crate) async fn request_if_ready(ctx: &Context, run_id: i64) -> Result<(), SyncError> {
    let mut tx = ctx.pool.begin().await?;
    let claimed = crate::repo::sync::claim_finalize(&mut tx, run_id).await?;
    tx.commit().await?;
    if claimed {
        send_step(ctx, run_id, Step::Files).await?;
    }
    Ok(())
}

/// Queues the (deduplicated) message for `step` of a run's finalize.
async fn send_step(ctx: &Context, run_id: i64, step: Step) -> Result<(), SyncError> {
    let dedup = match step {
        Step::Files => format!("finalize-{run_id}"),
        later => format!("finalize-{run_id}-{}", later.as_str()),
    };
    send(ctx, run_id, step, dedup).await
}

/// Queues the message that goes on with a fanned-out `step` once its `phase` (the step's own
/// name, or its map phase) has finished (sent by the phase's last part). Each phase has its
/// own deduplication id: a map phase's finish and the step's may come within the same 5 minutes.
pub(crate) async fn send_finish(
    ctx: &Context,
    run_id: i64,
    step: Step,
    phase: &str,
) -> Result<(), SyncError> {
    send(
        ctx,
        run_id,
        step,
        format!("finalize-{run_id}-{phase}-finish"),
    )
    .await
}

async fn send(ctx: &Context, run_id: i64, step: Step, dedup: String) -> Result<(), SyncError> {
    let body = serde_json::to_string(&FinalizeMessage { run_id, step })
        .map_err(|e| SyncError::Message(e.to_string()))?;
    ctx.sqs
        .send_message()
        .queue_url(ctx.cfg.finalize_queue_url()?)
        .message_body(body)
        .message_group_id("finalize")
        .message_deduplication_id(dedup)
        .send()
        .await
        .map_err(|e| SyncError::sqs("send finalize", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    tracing::info!(run_id, step = step.as_str(), "finalize step requested");
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
    /// The files step closed the run.
    Finalized {
        run_id: i64,
        status: String,
        files: Vec<FileFinal>,
        links: Option<super::links::LinkCounts>,
    },
    /// A later step ran (each records its own failure: the linker in `facility_link_run`, the
    /// engine in `violation_engine_run`, the publication in `publish_state`; the next run or
    /// the facility-link and violations-compute functions catch up).
    Stepped { run_id: i64, step: Step },
    /// Another invocation did this step already; the step after it was queued again.
    AlreadyDone { run_id: i64, step: Step },
    /// The step's parts are queued (`sync::parts`); the last to report queues the step again,
    /// which then finishes and moves the run on.
    FannedOut {
        run_id: i64,
        step: Step,
        parts: usize,
    },
}

/// Handles a finalize-queue batch (batch size 1 in the template; any size works).
pub async fn handle(ctx: &Context, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let result = match serde_json::from_str::<FinalizeMessage>(
            message.body.as_deref().unwrap_or_default(),
        ) {
            Ok(m) => run_step(ctx, m.run_id, m.step).await.map(|_| ()),
            Err(e) => Err(SyncError::Message(e.to_string())),
        };
        if let Err(e) = result {
            tracing::error!(message_id = %id, error = %e, "finalize failed");
            response.add_failure(id);
        }
    }
    response
}

/// Runs `step` of a run's finalize once and queues the next: the files step is guarded by the
/// run's `finished_at`, each later one by a compare-and-set of `sync_run.finalize_step`. A
/// message for a step already done queues the next step again (a send that failed after the
/// step's work committed), and does nothing else.
pub async fn run_step(
    ctx: &Context,
    run_id: i64,
    step: Step,
) -> Result<FinalizeOutcome, SyncError> {
    let started = std::time::Instant::now();
    if step == Step::Files {
        return finalize_run(ctx, run_id).await;
    }
    let pending = pending_step(ctx, run_id).await?;
    if pending != Some(step) {
        return match pending {
            Some(later) if later < step => Err(SyncError::Message(format!(
                "finalize of run {run_id}: step {} requested before {}",
                step.as_str(),
                later.as_str()
            ))),
            _ => already_done(ctx, run_id, step, pending).await,
        };
    }
    let mut timings = Timings::new();
    match step {
        Step::Files => {} // ran above, with its own guard
        Step::Link => link_step(ctx, run_id, &mut timings).await,
        Step::Engine => {
            if let Progress::Waiting(parts) = engine_step(ctx, run_id, &mut timings).await? {
                let invocation = format!("{}_fan_out", step.as_str());
                note_step(ctx, run_id, &invocation, &timings, ms_since(started)).await?;
                return Ok(FinalizeOutcome::FannedOut {
                    run_id,
                    step,
                    parts,
                });
            }
        }
        Step::Publish => publish_step(ctx, run_id, &mut timings).await,
    }
    note_step(ctx, run_id, step.as_str(), &timings, ms_since(started)).await?;
    let advanced = sqlx::query!(
        "update sync_run set finalize_step = $3 where id = $1 and finalize_step = $2",
        run_id,
        step.as_str(),
        step.stored_after()
    )
    .execute(&ctx.pool)
    .await?
    .rows_affected()
        == 1;
    match step.next() {
        Some(next) if advanced => send_step(ctx, run_id, next).await?,
        _ => {}
    }
    if step == Step::Publish && advanced {
        request_alert_dispatch(ctx, run_id).await;
    }
    Ok(FinalizeOutcome::Stepped { run_id, step })
}

/// Whether a closed run's finalize waits for `step`.
pub(crate) async fn waits_for(ctx: &Context, run_id: i64, step: Step) -> Result<bool, SyncError> {
    Ok(pending_step(ctx, run_id).await? == Some(step))
}

/// The step a closed run's finalize is waiting for (`None`: done).
async fn pending_step(ctx: &Context, run_id: i64) -> Result<Option<Step>, SyncError> {
    let row = sqlx::query!(
        "select finished_at is not null as \"closed!\", finalize_step from sync_run where id = $1",
        run_id
    )
    .fetch_optional(&ctx.pool)
    .await?
    .ok_or_else(|| SyncError::Message(format!("no sync run {run_id}")))?;
    if !row.closed {
        return Err(SyncError::Message(format!(
            "finalize of run {run_id}: the run is not closed (its files step has not run)"
        )));
    }
    Step::pending(run_id, row.finalize_step.as_deref())
}

/// A message for a step already done: the step the run waits for is queued again (its message
/// may never have been sent), and nothing else happens.
async fn already_done(
    ctx: &Context,
    run_id: i64,
    step: Step,
    pending: Option<Step>,
) -> Result<FinalizeOutcome, SyncError> {
    tracing::info!(run_id, step = step.as_str(), "finalize step already done");
    if let Some(next) = pending {
        send_step(ctx, run_id, next).await?;
    }
    Ok(FinalizeOutcome::AlreadyDone { run_id, step })
}

/// The files step: finalizes a run's files exactly once (the run row is locked and
/// `finished_at` is the guard), closes the run and queues the link step.
#[tracing::instrument(skip(ctx))]
pub async fn finalize_run(ctx: &Context, run_id: i64) -> Result<FinalizeOutcome, SyncError> {
    let started = std::time::Instant::now();
    let mut tx = ctx.pool.begin().await?;
    let run = sqlx::query!(
        "select finished_at is not null as \"closed!\", finalize_step from sync_run where id = $1 for update",
        run_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| SyncError::Message(format!("no sync run {run_id}")))?;
    if run.closed {
        tx.commit().await?;
        let pending = Step::pending(run_id, run.finalize_step.as_deref())?;
        return already_done(ctx, run_id, Step::Files, pending).await;
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
    sqlx::query!("update sync_run set status = $2, finished_at = now(), finalize_step = $5, notes = $3, error = $4 where id = $1", run_id, run_status, serde_json::json!({ "links": links }).to_string(), (!problems.is_empty()).then(|| problems.join("; ")), Step::Files.stored_after())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // What the steps took (milliseconds), noted on the run: the files' own step (withdrawals,
    // derived links) after the first load's index builds.
    let mut timings: Timings = vec![
        ("indexes", indexes_ms),
        ("files", ms_since(started).saturating_sub(indexes_ms)),
    ];
    let loaded = loaded_tables(&finals);
    timed(&mut timings, "analyze", analyze(&ctx.pool, &loaded)).await;
    note_step(
        ctx,
        run_id,
        Step::Files.as_str(),
        &timings,
        ms_since(started),
    )
    .await?;
    if let Some(next) = Step::Files.next() {
        send_step(ctx, run_id, next).await?;
    }
    tracing::info!(run_id, status = run_status, "run closed");
    Ok(FinalizeOutcome::Finalized {
        run_id,
        status: run_status.into(),
        files: finals,
        links,
    })
}

/// Whether the run changed nothing that linking, summaries and dashboards show
/// ([`crate::repo::sync::changed_nothing`]; a failure to tell counts as a change).
async fn run_changed_nothing(ctx: &Context, run_id: i64) -> bool {
    crate::repo::sync::changed_nothing(&ctx.pool, run_id)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(run_id, error = %e, "could not tell whether the run changed anything");
            false
        })
}

/// The link step: links facilities for what the run changed, unless it changed nothing.
async fn link_step(ctx: &Context, run_id: i64, timings: &mut Timings) {
    if run_changed_nothing(ctx, run_id).await {
        tracing::info!(run_id, "no row changed: facility linking skipped");
        return;
    }
    timed(timings, "linking", link_facilities(ctx, run_id)).await;
    timed(
        timings,
        "analyze_links",
        analyze(&ctx.pool, &["facility", "facility_link"]),
    )
    .await;
}

/// Where a fanned-out step is.
enum Progress {
    /// The step's work is done (in this invocation, or by its parts).
    Done,
    /// This many parts are queued and not all have reported.
    Waiting(usize),
}

/// The engine step: computes events for what the run (and any run before it) changed. Data
/// larger than one part is computed by parts (`engine::plan`, `sync::parts`): this step queues
/// them, and runs again to finish when the last part has reported. A failure is recorded and
/// does not stop the publication: the engine's watermark makes the next run pick the rows up,
/// and the dashboards show the last events.
async fn engine_step(
    ctx: &Context,
    run_id: i64,
    timings: &mut Timings,
) -> Result<Progress, SyncError> {
    use crate::violations::engine;
    let name = Step::Engine.as_str();
    let phase = crate::repo::parts::phase(&ctx.pool, run_id, name).await?;
    let Some(mut phase) = phase else {
        // The engine still runs when the run changed nothing: it catches up on what an earlier
        // run left.
        let mut opts = engine::Options::new("finalize", ctx.cfg.nd_policy);
        opts.sync_run_id = Some(run_id);
        opts.up_to_run = Some(run_id);
        let planned = timed(
            timings,
            "engine",
            engine::plan(&ctx.pool, &opts, run_id, name, ctx.cfg.engine_rows_per_part),
        )
        .await;
        return match planned {
            Ok(engine::Planned::Computed(_)) => Ok(Progress::Done),
            Ok(engine::Planned::FannedOut {
                parts, map_parts, ..
            }) => {
                // A mapped pass sends its map parts; its parts are sent once they have run.
                let map = map_parts > 0;
                let all: Vec<i32> = (0..if map { map_parts } else { parts }).collect();
                super::parts::send(ctx, run_id, Step::Engine, map, &all).await?;
                Ok(Progress::Waiting(all.len()))
            }
            Err(e) => {
                tracing::error!(run_id, error = %e, "violation engine failed");
                if let Err(db) = engine::record_failure(&ctx.pool, &opts, &e).await {
                    tracing::error!(error = %db, "could not record the engine failure");
                }
                Ok(Progress::Done)
            }
        };
    };
    let map_name = engine::map_phase(name);
    if let Some(map) = crate::repo::parts::phase(&ctx.pool, run_id, &map_name).await? {
        if !map.finished() {
            // The fan-out delivered again (its sends may have failed): the map parts not done
            // yet are queued again; a part that runs twice finds itself done.
            let pending = crate::repo::parts::pending(&ctx.pool, run_id, &map_name).await?;
            super::parts::send(ctx, run_id, Step::Engine, true, &pending).await?;
            return Ok(Progress::Waiting(pending.len()));
        }
        if let Some(ms) = map.wall_ms {
            timings.push(("engine_map", u64::try_from(ms).unwrap_or(0)));
        }
        if map.parts_failed > 0 && !phase.finished() {
            // What the parts would compute from an incomplete map would be wrong (the rows of
            // the failed ranges missing, their events retracted): the parts are recorded
            // failed unrun, and the pass ends failed below (no watermark moves).
            let reason = format!(
                "not run: {} of the {} map parts failed",
                map.parts_failed, map.parts
            );
            crate::repo::parts::fail_pending(&ctx.pool, run_id, name, &reason).await?;
            phase = crate::repo::parts::phase(&ctx.pool, run_id, name)
                .await?
                .ok_or_else(|| SyncError::Message(format!("run {run_id}: no {name} phase")))?;
        }
    }
    if !phase.finished() {
        // The parts start (after the map), or the fan-out delivered again (its sends may have
        // failed): the parts not done yet are queued; a part that runs twice finds itself done.
        crate::repo::parts::restart_unstarted(&ctx.pool, run_id, name).await?;
        let pending = crate::repo::parts::pending(&ctx.pool, run_id, name).await?;
        super::parts::send(ctx, run_id, Step::Engine, false, &pending).await?;
        return Ok(Progress::Waiting(pending.len()));
    }
    let spec: engine::PartSpec = serde_json::from_value(phase.spec)
        .map_err(|e| SyncError::Message(format!("engine phase spec: {e}")))?;
    let reports = crate::repo::parts::reports(&ctx.pool, run_id, name).await?;
    if let Some(ms) = phase.wall_ms {
        timings.push(("engine_parts", u64::try_from(ms).unwrap_or(0)));
    }
    let finished = timed(
        timings,
        "engine_finish",
        engine::finish_parts(&ctx.pool, &spec, &reports),
    )
    .await;
    if let Err(e) = finished {
        tracing::error!(run_id, error = %e, "violation engine finish failed");
        if let Err(db) = engine::abandon(&ctx.pool, spec.engine_run_id, &e).await {
            tracing::error!(error = %db, "could not record the engine failure");
        }
    }
    Ok(Progress::Done)
}

/// The publish step: refreshes the summaries and stored dashboards (kept when neither the run
/// nor the engine changed anything and today's publication is complete), starts a new cache
/// generation and preloads its hot keys. Without stored dashboards the dashboard computes
/// live; the next run stores them again.
async fn publish_step(ctx: &Context, run_id: i64, timings: &mut Timings) {
    // Decided from what the database says, as the link step did: the same facts, since the
    // run is closed.
    let rebuild = if run_changed_nothing(ctx, run_id).await {
        Rebuild::UnlessUnchanged
    } else {
        Rebuild::All
    };
    let engine_quiet = crate::repo::sync::engine_changed_nothing(&ctx.pool, run_id)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(run_id, error = %e, "could not tell whether the engine changed anything");
            false
        });
    let views =
        crate::api::publish::publish_views(&ctx.pool, &ctx.cache, rebuild, engine_quiet, timings)
            .await;
    let preloaded = timed(timings, "preload", async {
        if views.generation.is_none() {
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
    tracing::info!(run_id, generation = ?views.generation, preloaded, "run published");
}

/// Adds a step's timings to the run's notes (`finalizeMs`) with the time of its invocation
/// (`finalizeInvocationMs`); after the publish step also the total of the invocations and
/// `published_at`, which whoever waits for the run to be served waits for.
async fn note_step(
    ctx: &Context,
    run_id: i64,
    invocation: &str,
    timings: &Timings,
    invocation_ms: u64,
) -> Result<(), SyncError> {
    let notes: Option<String> =
        sqlx::query_scalar!("select notes from sync_run where id = $1", run_id)
            .fetch_one(&ctx.pool)
            .await?;
    let mut notes: serde_json::Map<String, serde_json::Value> = notes
        .as_deref()
        .and_then(|n| serde_json::from_str(n).ok())
        .unwrap_or_default();
    let mut section = |key: &str| -> serde_json::Map<String, serde_json::Value> {
        match notes.remove(key) {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    };
    let mut ms = section("finalizeMs");
    let mut invocations = section("finalizeInvocationMs");
    for (name, t) in timings {
        ms.insert((*name).to_owned(), (*t).into());
    }
    invocations.insert(invocation.to_owned(), invocation_ms.into());
    let published = invocation == Step::Publish.as_str();
    if published {
        let total: u64 = invocations.values().filter_map(|v| v.as_u64()).sum();
        ms.insert("total".to_owned(), total.into());
    }
    notes.insert("finalizeMs".to_owned(), ms.into());
    notes.insert("finalizeInvocationMs".to_owned(), invocations.into());
    sqlx::query!(
        "update sync_run
            set notes = $2, published_at = case when $3 then now() else published_at end
          where id = $1",
        run_id,
        serde_json::Value::Object(notes).to_string(),
        published
    )
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

/// Links facilities for what the run changed (before the engine, which then computes events
/// for the linked facilities), and adds the counts to the run's notes. A failure does not undo
/// the finalized run: it is recorded, and the next run catches up.
/// The tables the run's imported files loaded, each once (eSMR's yearly files all load one
/// table: ANALYZE would sample it once per file).
fn loaded_tables(finals: &[FileFinal]) -> Vec<&'static str> {
    let tables: std::collections::BTreeSet<&'static str> = finals
        .iter()
        .filter(|f| matches!(f.status.as_str(), "succeeded" | "partial"))
        .filter_map(|f| registry::dataset(&f.dataset).map(|d| d.table))
        .collect();
    tables.into_iter().collect()
}

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
    // The rows the file covers: a scoped file of a dataset published in parts, its part.
    let bounds = match (&scope, dataset.merge.scope) {
        (Some(scope), Some(rule)) => Some(rule.bounds(scope).ok_or(scope)),
        _ => None,
    };
    let note = if let (Some(scope), None) = (&scope, dataset.merge.scope) {
        // A dataset published whole has no rule for which rows a part covers.
        Some(format!(
            "withdrawal skipped: the file is declared as part {scope:?} of a dataset published whole; a partial extract adds and updates rows, it never withdraws"
        ))
    } else if let Some(Err(scope)) = &bounds {
        Some(format!(
            "withdrawal skipped: the file is declared as part {scope:?} of {dataset_name}, which is published by year"
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
        let bounds = bounds.and_then(Result::ok);
        withdraw(tx, dataset, file_id, bounds, quarantined > 0).await?
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
    bounds: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    any_quarantined: bool,
) -> Result<(u64, u64), SyncError> {
    // An unscoped file covers the whole dataset; a scoped one its part (the bounds, $2 and $3).
    let scope = match (dataset.merge.scope, bounds) {
        (Some(rule), Some(_)) => rule.predicate(),
        _ => "$2::date is null and $3::date is null".to_owned(),
    };
    let (from, to) = bounds.unzip();
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
        .bind(from)
        .bind(to)
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
    .bind(from)
    .bind(to)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dataset: &str, status: &str) -> FileFinal {
        FileFinal {
            file_id: 1,
            dataset: dataset.into(),
            status: status.into(),
            withdrawn: 0,
            note: None,
        }
    }

    #[test]
    fn each_loaded_table_is_analyzed_once() {
        let mut finals: Vec<FileFinal> = (2006..=2026).map(|_| file("esmr", "succeeded")).collect();
        finals.push(file("smarts_violations", "partial"));
        finals.push(file("smarts_inspections", "failed"));
        assert_eq!(loaded_tables(&finals), ["esmr_sample", "smarts_violation"]);
    }
}
