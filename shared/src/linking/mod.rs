//! Facility linking: one canonical facility per real site (docs/LINKING.md).
//!
//! Every source record (a SMARTS application `'APP_ID|WDID'` per program, an eSMR facility by
//! CIWQS place id) has a facility of its own from seeding (`crate::facility`). The linker
//! decides which of them are one site and points their `facility_link` rows at one canonical
//! facility (built from a SMARTS record when the group has one, else the oldest; so ids stay
//! stable as groups grow):
//!
//! 1. candidates: the same WDID or APP_ID within one SMARTS program (`exact`); coordinates
//!    within the radius, the same street address, or similar names where coordinates cannot
//!    place a record (`fuzzy`, scored by [`score`]). Only pairs touching a record changed since
//!    the last run are scored; the rest are kept in `facility_match`.
//! 2. grouping ([`cluster`]): manual decisions first and always, then exact pairs, then fuzzy
//!    pairs at or above the threshold; weaker ones (down to the floor) and ambiguous ones are
//!    written as `proposed` links for review.
//! 3. writing: only rows that differ change; facilities left without their own record get
//!    `merged_into`; facilities whose records changed are queued in `facility_relink` for the
//!    violation engine.
//!
//! Manual decisions live in `facility_link_decision` and are replayed by every run, so they
//! survive re-imports and re-runs.
//!
//! [`run`] takes the steps in one transaction: `candidates` (load the records, score the
//! pairs), `plan` (the graph, its groups, the rows every record should have), `write` (make
//! `facility_link` say so, count the result).

mod candidates;
pub mod cluster;
mod plan;
pub mod score;
mod write;

pub use score::Settings;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Instant;

/// Why a linker run or a decision failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("violation engine: {0}")]
    Engine(#[from] crate::violations::engine::EngineError),
    #[error("dashboard refresh: {0}")]
    Dashboard(String),
}

/// The input of the `facility-link` function: `{}` (incremental) or `{"full": true}`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkRequest {
    pub full: bool,
}

/// A linker run and what followed from it.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub links: Report,
    pub violations: crate::violations::engine::Report,
}

/// Runs the linker; a failure is recorded in `facility_link_run` and returned. What follows
/// from new links (the engine, dashboards, the cache) is [`crate::api::publish`]'s.
pub async fn run_recorded(pool: &PgPool, opts: &Options) -> Result<Report, LinkError> {
    let result = run(pool, opts).await;
    if let Err(e) = &result {
        tracing::error!(error = %e, trigger = %opts.trigger, "facility linking failed");
        if let Err(db) = record_failure(pool, opts, e).await {
            tracing::error!(error = %db, "could not record the linking failure");
        }
    }
    result
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub trigger: String,
    pub sync_run_id: Option<i64>,
    pub force_full: bool,
    pub settings: Settings,
}

impl Options {
    pub fn new(trigger: &str, settings: Settings) -> Self {
        Self {
            trigger: trigger.into(),
            sync_run_id: None,
            force_full: false,
            settings,
        }
    }
}

/// Link rows written by a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Written {
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
}

/// What a run did and what the links look like afterwards (also in `sync_run.notes` and
/// `facility_link_run.report`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub run_id: i64,
    pub mode: &'static str,
    pub facilities_created: u64,
    /// Facilities whose served fields (name, address, coordinates, SIC, …) changed: records
    /// that changed, and facilities that gained or lost records (`facility::derive`).
    pub facilities_refreshed: u64,
    /// Source records whose facility attributes changed since the last run (all when full).
    pub changed_records: i64,
    /// Candidate pairs scored this run, and all stored pairs at or above the floor.
    pub pairs_scored: i64,
    pub pairs_stored: i64,
    pub ambiguous_records: usize,
    pub blocked_by_decisions: usize,
    pub written: Written,
    pub relinked_facilities: i64,
    /// Current `linked` rows by method, and by method and confidence band.
    pub linked_by_method: BTreeMap<String, i64>,
    pub by_method_and_band: BTreeMap<String, BTreeMap<String, i64>>,
    /// Current `proposed` rows (waiting for review) and facilities merged into another.
    pub proposed: i64,
    pub merged_facilities: i64,
    /// Milliseconds per step.
    pub timings: BTreeMap<String, u64>,
    pub elapsed_ms: u64,
}

/// Runs the linker (see the module docs) in one transaction.
pub async fn run(pool: &PgPool, opts: &Options) -> Result<Report, LinkError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", crate::db::LINKING_LOCK)
        .execute(&mut *tx)
        .await?;
    let state =
        sqlx::query!("select watermark, fingerprint, last_sync_run_id from facility_link_state")
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| (r.watermark, r.fingerprint, r.last_sync_run_id));
    let fingerprint = score::fingerprint(&opts.settings);
    let full = opts.force_full || state.as_ref().is_none_or(|s| s.1 != fingerprint);
    let mode = if full { "full" } else { "incremental" };
    let run_id: i64 = sqlx::query_scalar!(
        "insert into facility_link_run (trigger, sync_run_id, mode, status)
         values ($1, $2, $3, 'running') returning id",
        &opts.trigger,
        opts.sync_run_id,
        mode
    )
    .fetch_one(&mut *tx)
    .await?;
    // Rows of a run still importing are not settled (as in the violation engine).
    let up_to: i64 = sqlx::query_scalar!(
        r#"select coalesce((select min(id) - 1 from sync_run where status = 'running'),
                         (select max(id) from sync_run), 0) as "v!""#
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut lap = Instant::now();
    let seeded =
        crate::facility::seed(&mut tx, state.as_ref().and_then(|s| s.2).filter(|_| !full)).await?;
    let watermark = if full { None } else { state.map(|s| s.0) };
    let mut timings = BTreeMap::new();
    let mut mark = |name: &str| {
        timings.insert(name.to_owned(), lap.elapsed().as_millis() as u64);
        lap = Instant::now();
    };
    mark("seed");
    let changed_records = candidates::load_records(&mut tx, watermark).await?;
    mark("load");
    let pairs_scored = candidates::score_candidates(&mut tx, &opts.settings, full).await?;
    mark("score");
    let pairs_stored: i64 = sqlx::query_scalar!(r#"select count(*) as "v!" from facility_match"#)
        .fetch_one(&mut *tx)
        .await?;
    let plan = plan::plan(&mut tx, &opts.settings).await?;
    mark("cluster");
    let written = write::write(&mut tx, &plan.rows).await?;
    // The served fields follow the links as they now are.
    let derived = crate::facility::derive(&mut tx).await?;
    mark("write");
    // Runtime SQL: lk_relinked is a temporary table of this transaction, which the build-time check cannot see.
    let relinked_facilities: i64 = sqlx::query_scalar("select count(*) from lk_relinked")
        .fetch_one(&mut *tx)
        .await?;

    sqlx::query!(
        "insert into facility_link_state (watermark, fingerprint, last_sync_run_id)
         values (now(), $1, $2)
         on conflict (id) do update set watermark = excluded.watermark,
             fingerprint = excluded.fingerprint, last_sync_run_id = excluded.last_sync_run_id,
             updated_at = now()",
        &fingerprint,
        up_to
    )
    .execute(&mut *tx)
    .await?;

    let mut report = Report {
        run_id,
        mode,
        facilities_created: seeded.created,
        facilities_refreshed: seeded.derived + derived,
        changed_records,
        pairs_scored,
        pairs_stored,
        ambiguous_records: plan.ambiguous,
        blocked_by_decisions: plan.blocked,
        written,
        relinked_facilities,
        timings,
        ..Report::default()
    };
    write::summarize(&mut tx, &opts.settings, &mut report).await?;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    sqlx::query!(
        "update facility_link_run set status = 'succeeded', finished_at = clock_timestamp(),
                report = $2 where id = $1",
        run_id,
        serde_json::to_value(&report).unwrap_or_default()
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        run_id,
        mode,
        changed_records,
        pairs_scored,
        inserted = written.inserted,
        updated = written.updated,
        deleted = written.deleted,
        relinked = relinked_facilities,
        proposed = report.proposed,
        merged = report.merged_facilities,
        by_method = ?report.linked_by_method,
        by_band = ?report.by_method_and_band,
        elapsed_ms = report.elapsed_ms,
        "facility linking finished"
    );
    Ok(report)
}

/// Records a failed run (its transaction rolled back, so nothing else changed).
pub async fn record_failure(
    pool: &PgPool,
    opts: &Options,
    error: &LinkError,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into facility_link_run (trigger, sync_run_id, mode, status, finished_at, error)
         values ($1, $2, 'incremental', 'failed', now(), $3)",
        &opts.trigger,
        opts.sync_run_id,
        error.to_string()
    )
    .execute(pool)
    .await?;
    Ok(())
}
