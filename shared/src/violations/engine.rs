//! Set-based computation of violation events and samples.
//!
//! One engine run, in one transaction under an advisory lock:
//! 1. classify the parameter names and units not yet in `parameter_map` / `unit_map`;
//! 2. seed canonical facilities for new source records (`crate::facility::seed`);
//! 3. find the facility x pollutant pairs touched by rows changed or withdrawn since the last run
//!    (everything when the fingerprint — engine version, ND policy, benchmarks, manual links —
//!    changed, or on request);
//! 4. load every current result of those pairs into a temporary table, converted to the
//!    benchmark unit, with the reason when a result cannot be compared;
//! 5. evaluate the IGP annual and instantaneous NALs and every other applicable benchmark;
//! 6. upsert events (keeping their review status), retract events the data no longer supports,
//!    replace the pairs' samples, NAL statistics and Level rows, refresh duplicate candidates;
//! 7. advance the watermark.
//!
//! A pair is the unit of work because facility and parameter are part of every source row's key:
//! a correction can move a result between reporting years but never between pairs, and Level
//! status needs a pair's whole history anyway.

use super::NdPolicy;
use super::classify::{self, ENGINE_VERSION};
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Instant;

/// Errors of an engine run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A fanned-out pass's recorded spec does not name what a part asks for.
    #[error("{0}")]
    Spec(String),
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    /// Who asked: 'finalize', 'manual', 'schedule', 'test'.
    pub trigger: String,
    /// The sync run whose finalize step runs the engine.
    pub sync_run_id: Option<i64>,
    /// Treat rows of sync runs up to this id as settled (default: every run not still running).
    pub up_to_run: Option<i64>,
    /// Recompute everything even when nothing changed.
    pub force_full: bool,
    pub nd_policy: NdPolicy,
}

impl Options {
    pub fn new(trigger: &str, nd_policy: NdPolicy) -> Self {
        Self {
            trigger: trigger.to_owned(),
            sync_run_id: None,
            up_to_run: None,
            force_full: false,
            nd_policy,
        }
    }
}

/// What a run did (also stored in `violation_engine_run`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub run_id: i64,
    pub mode: &'static str,
    pub pairs: i64,
    pub results: i64,
    pub events_new: i64,
    pub events_updated: i64,
    pub events_escalated: i64,
    pub events_retracted: i64,
    pub samples: i64,
    pub duplicates: i64,
    pub notes: Value,
}

/// The three result tables and how each names the columns the engine reads.
struct Source {
    source: &'static str,
    table: &'static str,
    /// The dataset the table is loaded from (for data-quality issues).
    dataset: &'static str,
    /// The published names of the date and result columns (for data-quality issues).
    date_column: &'static str,
    year_column: &'static str,
    qualifier: &'static str,
    date: &'static str,
    /// The published reporting year, used when the sample date is missing.
    year: &'static str,
    sample_key: &'static str,
    /// The detection limit of a non-detect, best first.
    limit: &'static str,
    /// Reasons specific to the source for not comparing a result.
    exclusion: &'static str,
    facility_key: &'static str,
}

const SOURCES: &[Source] = &[
    Source {
        source: "smarts_industrial",
        table: "smarts_industrial_monitoring",
        dataset: "smarts_industrial_monitoring",
        date_column: "sample_date",
        year_column: "reporting_year",
        qualifier: "t.result_qualifier",
        date: "t.sample_date",
        year: "t.reporting_year",
        sample_key: "coalesce(t.report_id || '/' || t.sample_id, t.id::text)",
        limit: "coalesce(t.mdl, t.rl)",
        exclusion: "null",
        facility_key: "coalesce(t.app_id, '') || '|' || coalesce(t.wdid, '')",
    },
    Source {
        source: "smarts_construction",
        table: "smarts_construction_monitoring",
        dataset: "smarts_construction_monitoring",
        date_column: "sample_date",
        year_column: "report_year",
        qualifier: "t.result_qualifier",
        date: "t.sample_date",
        year: "t.report_year",
        sample_key: "coalesce(t.report_id || '/' || t.sample_id, t.id::text)",
        limit: "coalesce(t.mdl, t.rl)",
        exclusion: "null",
        facility_key: "coalesce(t.app_id, '') || '|' || coalesce(t.wdid, '')",
    },
    Source {
        source: "esmr",
        table: "esmr_sample",
        dataset: "esmr",
        date_column: "sampling_date",
        year_column: "sampling_date",
        qualifier: "t.qualifier",
        date: "t.sampling_date",
        year: "null::integer",
        sample_key: "t.id::text",
        limit: "coalesce(t.mdl, t.ml, t.rl)",
        // Calculated rows (monthly averages, loads) restate raw results; influent is what a
        // plant receives, not what it discharges.
        exclusion:
            "case when t.calculated_method is not null then 'calculated result'
                         when t.location_place_type ilike '%influent%' then 'influent location' end",
        facility_key: "t.facility_place_id",
    },
];

/// Whether a converted result `m` exceeds benchmark row `b` (upper limit, or range with vmax).
/// `>` results are lower bounds: at the limit they already exceed.
const EXCEEDS: &str = "(m.qclass <> 'nd' and case when b.vmax is null
     then m.value > b.v or (m.qclass = 'gt' and m.value >= b.v)
     else m.value < b.v or m.value > b.vmax end)";

/// measured / benchmark; for ranges 10^(distance outside the range).
const RATIO: &str = "case when m.qclass = 'nd' then null
     when b.vmax is null then case when b.v > 0 then m.value / b.v end
     when m.value < b.v then power(10::numeric, b.v - m.value)
     when m.value > b.vmax then power(10::numeric, m.value - b.vmax)
     else 1 end";

/// What a pass knows once it has begun: its run, mode and watermark.
struct Begun {
    run_id: i64,
    full: bool,
    /// The watermark of an incremental pass (rows changed after this sync run).
    after: Option<i64>,
    up_to: i64,
    fingerprint: String,
    classified: Value,
    seeded: Value,
}

impl Begun {
    fn mode(&self) -> &'static str {
        if self.full { "full" } else { "incremental" }
    }
}

/// Milliseconds per phase of a pass, in `notes.timings`.
struct Laps {
    timings: serde_json::Map<String, Value>,
    lap: Instant,
}

impl Laps {
    fn new() -> Self {
        Self {
            timings: serde_json::Map::new(),
            lap: Instant::now(),
        }
    }

    fn mark(&mut self, name: &str) {
        self.timings
            .insert(name.into(), json!(self.lap.elapsed().as_millis() as u64));
        self.lap = Instant::now();
    }
}

/// Which results a pass (or a part of one) computes and rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every pair (a full pass in one transaction).
    All,
    /// The pairs in `eng_pairs` (an incremental pass, or a part of one).
    Pairs,
    /// Every pair of the facilities of one part of a full pass: the linked facilities with
    /// `facility_id % parts = part`, listed in `eng_fac` (read through each table's index on
    /// the facility; the finish retracts what facilities without any link still show).
    Facilities,
}

impl Scope {
    /// The condition on `alias` (a table with `facility_id` and `pollutant_key`) that selects
    /// the rows this scope rewrites.
    fn condition(self, alias: &str) -> String {
        match self {
            Scope::All => "true".to_owned(),
            Scope::Pairs => format!(
                "({alias}.facility_id, {alias}.pollutant_key) in (select facility_id, pollutant_key from eng_pairs)"
            ),
            Scope::Facilities => {
                format!("{alias}.facility_id in (select facility_id from eng_fac)")
            }
        }
    }
}

/// How a pass writes `violation_sample`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleWrite {
    /// Upsert, rewriting only samples that changed.
    Upsert,
    /// The first full pass in one transaction: the table is empty, so its indexes are deferred,
    /// the samples inserted without the conflict check and the indexes built afterwards.
    FirstPass,
    /// A part of a fanned-out first pass: the indexes were deferred when the pass began and
    /// are built by its finish.
    Insert,
}

/// Runs the engine in one transaction (see the module docs).
pub async fn compute(pool: &PgPool, opts: &Options) -> Result<Report, EngineError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let mut laps = Laps::new();
    let b = begin(&mut tx, opts, &mut laps).await?;
    let (pairs, _) = load_pairs(&mut tx, b.after).await?;
    let report = compute_in(&mut tx, opts, &b, pairs, &mut laps).await?;
    let report = end(&mut tx, opts, b, report, laps, started).await?;
    tx.commit().await?;
    Ok(report)
}

/// The pass of `b` over every pair it recomputes, in its transaction.
async fn compute_in(
    tx: &mut Transaction<'_, Postgres>,
    opts: &Options,
    b: &Begun,
    pairs: i64,
    laps: &mut Laps,
) -> Result<PartReport, EngineError> {
    let scope = if b.full { Scope::All } else { Scope::Pairs };
    let first_pass = b.full && no_samples_yet(tx).await?;
    let samples = if first_pass {
        SampleWrite::FirstPass
    } else {
        SampleWrite::Upsert
    };
    let mut report = compute_scope(
        tx,
        scope,
        Load::Sources,
        opts.nd_policy,
        b.run_id,
        samples,
        laps,
    )
    .await?;
    report.pairs = pairs;
    Ok(report)
}

/// Whether `violation_sample` is empty: a full pass into it is the first pass, which writes
/// without the conflict check and builds the table's indexes afterwards.
async fn no_samples_yet(tx: &mut Transaction<'_, Postgres>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"select not exists (select 1 from violation_sample) as "v!""#)
        .fetch_one(&mut **tx)
        .await
}

/// Starts a pass: takes the engine's lock, decides full or incremental against the stored
/// fingerprint and watermark, records the run, classifies new names and units, seeds
/// facilities and refreshes stale planner statistics.
async fn begin(
    tx: &mut Transaction<'_, Postgres>,
    opts: &Options,
    laps: &mut Laps,
) -> Result<Begun, EngineError> {
    // One engine at a time: finalize and the stand-alone function may overlap (the parts of a
    // fanned-out pass share the lock; see `compute_part`).
    sqlx::query!("select pg_advisory_xact_lock(7243001)")
        .execute(&mut **tx)
        .await?;
    // Rows of a run that is still importing are not settled: the watermark stays below the
    // oldest running run (finalize passes its own run, which is closed by then).
    let up_to: i64 = sqlx::query_scalar!(
        r#"select least(coalesce($1, (select max(id) from sync_run), 0),
                      coalesce((select min(id) - 1 from sync_run where status = 'running'),
                               coalesce($1, (select max(id) from sync_run), 0))) as "v!""#,
        opts.up_to_run
    )
    .fetch_one(&mut **tx)
    .await?;
    let fingerprint = fingerprint(tx, opts.nd_policy).await?;
    let states: Vec<(i64, String)> =
        sqlx::query!("select last_run_id, fingerprint from violation_engine_state")
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|r| (r.last_run_id, r.fingerprint))
            .collect();
    let full = opts.force_full
        || states.len() < SOURCES.len()
        || states.iter().any(|(_, f)| *f != fingerprint);
    let after = if full {
        None
    } else {
        states.iter().map(|(r, _)| *r).min()
    };
    let mode = if full { "full" } else { "incremental" };
    let run_id: i64 = sqlx::query_scalar!(
        "insert into violation_engine_run (trigger, sync_run_id, mode, status)
         values ($1, $2, $3, 'running') returning id",
        &opts.trigger,
        opts.sync_run_id,
        mode
    )
    .fetch_one(&mut **tx)
    .await?;
    tracing::info!(run_id, mode, up_to, ?after, "violation engine started");

    let classified = classify::refresh(tx, after).await?;

    let seeded = crate::facility::seed(tx, after).await?;
    // Fresh statistics: a plan built on "empty" estimates for tables that were just loaded (a
    // first sync, a new database) turns the joins below into nested loops over millions of rows.
    let mut analyze = vec!["parameter_map", "unit_map", "facility_link", "facility"];
    if after.is_none() {
        analyze.extend(SOURCES.iter().map(|s| s.table));
    }
    for table in analyze {
        // Statistics taken since the table last changed much (finalize analyzes what it loaded
        // just before the engine runs) are fresh enough: a second pass over millions of rows
        // would find the same.
        let stale: bool = sqlx::query_scalar!(
            r#"select coalesce((select s.n_mod_since_analyze > 0.1 * greatest(s.n_live_tup, 1000)
                                        or coalesce(s.last_analyze, s.last_autoanalyze) is null
                                  from pg_stat_user_tables s where s.relid = to_regclass($1)),
                               true) as "v!""#,
            table
        )
        .fetch_one(&mut **tx)
        .await?;
        if !stale {
            continue;
        }
        // Runtime SQL: the table name comes from the engine's list of working tables (ANALYZE takes no parameter).
        sqlx::query(sqlx::AssertSqlSafe(format!("analyze {table}")))
            .execute(&mut **tx)
            .await?;
    }
    laps.mark("classify_and_seed_ms");
    Ok(Begun {
        run_id,
        full,
        after,
        up_to,
        fingerprint,
        classified: json!(classified),
        seeded: json!(seeded),
    })
}

/// Computes the results of `scope` (its pairs in `eng_pairs` for [`Scope::Pairs`]), read as
/// `load` says, and rewrites what they decide.
async fn compute_scope(
    tx: &mut Transaction<'_, Postgres>,
    scope: Scope,
    load: Load,
    policy: NdPolicy,
    engine_run_id: i64,
    samples: SampleWrite,
    laps: &mut Laps,
) -> Result<PartReport, EngineError> {
    let results = load_measurements(tx, scope, load).await?;
    laps.mark("load_ms");
    tracing::info!(engine_run_id, results, "results loaded");
    evaluate(tx, policy).await?;
    let excluded = exclusions(tx).await?;
    laps.mark("evaluate_ms");
    let written = write_results(tx, scope, samples).await?;
    store_exclusions(tx, scope, engine_run_id).await?;
    laps.mark("write_ms");
    Ok(PartReport {
        pairs: 0,
        results,
        events_new: written.new,
        events_updated: written.updated,
        events_escalated: written.escalated,
        events_retracted: written.retracted,
        samples: written.samples,
        excluded,
        timings: Value::Object(laps.timings.clone()),
    })
}

/// Ends a pass whose results are written: refreshes the duplicate candidates, advances the
/// watermark (`advance`: no part of the pass failed) and records the run.
async fn end(
    tx: &mut Transaction<'_, Postgres>,
    opts: &Options,
    b: Begun,
    done: PartReport,
    mut laps: Laps,
    started: Instant,
) -> Result<Report, EngineError> {
    let duplicates = refresh_duplicates(tx).await?;
    laps.mark("duplicates_ms");
    advance_watermark(tx, b.up_to, &b.fingerprint).await?;
    let notes = json!({
        "ndPolicy": opts.nd_policy,
        "upToRun": b.up_to,
        "classified": b.classified,
        "facilities": b.seeded,
        "excluded": done.excluded,
        "timings": laps.timings,
        "elapsedMs": started.elapsed().as_millis() as u64,
    });
    let report = Report {
        run_id: b.run_id,
        mode: b.mode(),
        pairs: done.pairs,
        results: done.results,
        events_new: done.events_new,
        events_updated: done.events_updated,
        events_escalated: done.events_escalated,
        events_retracted: done.events_retracted,
        samples: done.samples,
        duplicates,
        notes,
    };
    record_run(tx, &report, None).await?;
    Ok(report)
}

/// Stores the watermark: rows of runs up to `up_to` are computed under `fingerprint`.
async fn advance_watermark(
    tx: &mut Transaction<'_, Postgres>,
    up_to: i64,
    fingerprint: &str,
) -> Result<(), sqlx::Error> {
    for s in SOURCES {
        sqlx::query!(
            "insert into violation_engine_state (source_table, last_run_id, fingerprint)
             values ($1, $2, $3)
             on conflict (source_table) do update
                set last_run_id = excluded.last_run_id, fingerprint = excluded.fingerprint,
                    updated_at = now()",
            s.table,
            up_to,
            fingerprint
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Records what a pass did on its `violation_engine_run` row: `succeeded`, or `failed` with
/// `error` (a fanned-out pass some of whose parts failed: what the others wrote stays).
async fn record_run(
    tx: &mut Transaction<'_, Postgres>,
    report: &Report,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update violation_engine_run
            set status = case when $11::text is null then 'succeeded' else 'failed' end,
                finished_at = clock_timestamp(), pairs = $2, results = $3,
                events_new = $4, events_updated = $5, events_escalated = $6,
                events_retracted = $7, samples = $8, duplicates = $9, notes = $10, error = $11
          where id = $1",
        report.run_id,
        report.pairs as i32,
        report.results,
        report.events_new as i32,
        report.events_updated as i32,
        report.events_escalated as i32,
        report.events_retracted as i32,
        report.samples,
        report.duplicates as i32,
        &report.notes,
        error
    )
    .execute(&mut **tx)
    .await?;
    tracing::info!(
        run_id = report.run_id,
        mode = report.mode,
        pairs = report.pairs,
        results = report.results,
        events_new = report.events_new,
        events_updated = report.events_updated,
        events_retracted = report.events_retracted,
        samples = report.samples,
        error,
        "violation engine finished"
    );
    Ok(())
}

/// What one part of a pass (or a pass in one transaction) computed and wrote.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartReport {
    pub pairs: i64,
    pub results: i64,
    pub events_new: i64,
    pub events_updated: i64,
    pub events_escalated: i64,
    pub events_retracted: i64,
    pub samples: i64,
    /// Results not compared, by source and reason, and the unknown unit spellings.
    pub excluded: Value,
    pub timings: Value,
}

/// What every part of a fanned-out pass needs (stored with its phase).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartSpec {
    pub engine_run_id: i64,
    pub parts: i32,
    /// A full pass is mapped first: each map part converts the rows of one id range of one
    /// source table into `engine_measure`, by part (empty: the parts read the sources).
    #[serde(default)]
    pub map: Vec<MapRange>,
    pub full: bool,
    /// The pass writes `violation_sample` into an empty table whose indexes it deferred.
    pub first_pass: bool,
    pub nd_policy: NdPolicy,
    pub up_to: i64,
    pub fingerprint: String,
    /// Facilities drained from `facility_relink` when the pass began: queued again if a part
    /// fails, so the next pass recomputes them.
    pub relinked: Vec<i64>,
    pub pairs: i64,
    /// The run's notes so far (classified, seeded, ND policy, the beginning's timings).
    pub notes: Value,
}

/// What [`plan`] did: the pass ran in this transaction (small enough for one part), or its
/// parts are recorded for the caller to queue.
#[derive(Debug)]
pub enum Planned {
    Computed(Report),
    /// `map_parts` > 0: the map phase runs first, then the `parts`.
    FannedOut {
        engine_run_id: i64,
        parts: i32,
        map_parts: i32,
    },
}

/// One map part of a full pass: the rows of a source table whose ids are in `lo..=hi`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MapRange {
    pub table: String,
    pub lo: i64,
    pub hi: i64,
}

/// The phase a step's map parts are recorded under (`finalize_phase.step`).
pub fn map_phase(step: &str) -> String {
    format!("{step}{MAP_SUFFIX}")
}

/// The step of a phase name ([`map_phase`] or the step's own).
pub fn step_of_phase(phase: &str) -> &str {
    phase.strip_suffix(MAP_SUFFIX).unwrap_or(phase)
}

const MAP_SUFFIX: &str = "_map";

/// Where a pass's measurements come from.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// The source tables, whole (or through the pairs of an incremental pass).
    Sources,
    /// The rows a part found through the facility-key indexes (`eng_rows`).
    PartRows,
    /// What the map parts converted for this part (`engine_measure`).
    Mapped { engine_run_id: i64, part: i32 },
}

/// The most parts one pass is split into.
const MAX_PARTS: u64 = 256;

/// Begins a pass for finalize step `step` of sync run `sync_run_id`. A pass whose source rows
/// (all of them for a full pass, the share of the recomputed facilities for an incremental
/// one) fit in `rows_per_part` runs here in one transaction, as [`compute`]; a larger one is
/// split into parts by facility (`facility_id % parts`), recorded as a phase of the step with
/// what each part needs, to run as [`compute_part`]s and end with [`finish_parts`].
pub async fn plan(
    pool: &PgPool,
    opts: &Options,
    sync_run_id: i64,
    step: &str,
    rows_per_part: u64,
) -> Result<Planned, EngineError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let mut laps = Laps::new();
    let b = begin(&mut tx, opts, &mut laps).await?;
    // A full pass recomputes every pair: its parts count them (listing them here would read
    // every source row once more).
    let (pairs, relinked) = if b.full {
        (0, Vec::new())
    } else {
        load_pairs(&mut tx, b.after).await?
    };
    let rows = rows_to_compute(&mut tx, b.full).await?;
    let parts = rows.div_ceil(rows_per_part.max(1)).clamp(1, MAX_PARTS);
    tracing::info!(run_id = b.run_id, rows, parts, "violation engine planned");
    if parts == 1 {
        let pairs = if b.full {
            load_pairs(&mut tx, b.after).await?.0
        } else {
            pairs
        };
        let done = compute_in(&mut tx, opts, &b, pairs, &mut laps).await?;
        let report = end(&mut tx, opts, b, done, laps, started).await?;
        tx.commit().await?;
        return Ok(Planned::Computed(report));
    }
    let parts = i32::try_from(parts).unwrap_or(i32::MAX);
    let relinked = if b.full {
        // Recomputed with everything; kept to be queued again if a part fails.
        sqlx::query_scalar!(
            r#"with q as (delete from facility_relink returning facility_id)
               select coalesce(array_agg(facility_id order by facility_id), '{}') as "v!" from q"#
        )
        .fetch_one(&mut *tx)
        .await?
    } else {
        relinked
    };
    if !b.full {
        // Runtime SQL: eng_pairs is a temporary table of this transaction, which the build-time check cannot see.
        sqlx::query(
            "insert into engine_pair (engine_run_id, facility_id, pollutant_key)
             select $1, facility_id, pollutant_key from eng_pairs",
        )
        .bind(b.run_id)
        .execute(&mut *tx)
        .await?;
    }
    let first_pass = b.full && no_samples_yet(&mut tx).await?;
    if first_pass {
        crate::import::first_load::defer_indexes(&mut tx, "violation_sample").await?;
    }
    // A full pass reads every source row: each is read once, by the map part of its id range
    // (a part reading its facilities' rows through an index would read most of the table's
    // pages, as every other part would: the facilities' rows are spread over the whole table).
    let map = if b.full {
        let map = map_ranges(&mut tx, rows_per_part).await?;
        create_measure_partitions(&mut tx, b.run_id, parts).await?;
        map
    } else {
        Vec::new()
    };
    laps.mark("plan_ms");
    let map_parts = i32::try_from(map.len()).unwrap_or(i32::MAX);
    let spec = PartSpec {
        engine_run_id: b.run_id,
        parts,
        map,
        full: b.full,
        first_pass,
        nd_policy: opts.nd_policy,
        up_to: b.up_to,
        fingerprint: b.fingerprint.clone(),
        relinked,
        pairs,
        notes: json!({
            "ndPolicy": opts.nd_policy,
            "upToRun": b.up_to,
            "classified": b.classified,
            "facilities": b.seeded,
            "parts": parts,
            "rowsToCompute": rows,
            "timings": laps.timings,
        }),
    };
    let spec_json = serde_json::to_value(&spec).unwrap_or_default();
    if map_parts > 0 {
        crate::repo::parts::create_phase(
            &mut tx,
            sync_run_id,
            &map_phase(step),
            map_parts,
            &spec_json,
        )
        .await?;
    }
    crate::repo::parts::create_phase(&mut tx, sync_run_id, step, parts, &spec_json).await?;
    tx.commit().await?;
    Ok(Planned::FannedOut {
        engine_run_id: b.run_id,
        parts,
        map_parts,
    })
}

/// The id ranges of the source tables, `rows_per_part` ids each (ids are dense: rows are never
/// deleted, a withdrawn row keeps its id).
async fn map_ranges(
    tx: &mut Transaction<'_, Postgres>,
    rows_per_part: u64,
) -> Result<Vec<MapRange>, sqlx::Error> {
    let width = i64::try_from(rows_per_part.max(1)).unwrap_or(i64::MAX);
    let mut ranges = Vec::new();
    for s in SOURCES {
        // Runtime SQL: the table is one of SOURCES (min and max through its primary key).
        let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select min(id), max(id) from {}",
            s.table
        )))
        .fetch_one(&mut **tx)
        .await?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            continue;
        };
        let mut from = lo;
        while from <= hi {
            let to = from.saturating_add(width - 1).min(hi);
            ranges.push(MapRange {
                table: s.table.to_owned(),
                lo: from,
                hi: to,
            });
            from = to.saturating_add(1);
        }
    }
    Ok(ranges)
}

/// The partition of `engine_measure` a pass's map parts write, one sub-partition per part.
fn measure_table(engine_run_id: i64) -> String {
    format!("engine_measure_r{engine_run_id}")
}

async fn create_measure_partitions(
    tx: &mut Transaction<'_, Postgres>,
    engine_run_id: i64,
    parts: i32,
) -> Result<(), sqlx::Error> {
    // A pass that never ended (its run closed at its deadline, its finish lost) left its
    // partition: the next mapped pass drops it.
    let stale = sqlx::query_scalar!(
        r#"select c.relname::text as "relname!" from pg_inherits i
             join pg_class c on c.oid = i.inhrelid
            where i.inhparent = 'engine_measure'::regclass
              and not exists (select 1 from violation_engine_run r
                               where r.status = 'running'
                                 and c.relname = 'engine_measure_r' || r.id::text)"#
    )
    .fetch_all(&mut **tx)
    .await?;
    for table in stale {
        // Runtime SQL: the name of an existing partition of engine_measure, from the catalog.
        sqlx::query(sqlx::AssertSqlSafe(format!("drop table if exists {table}")))
            .execute(&mut **tx)
            .await?;
    }
    let table = measure_table(engine_run_id);
    // Runtime SQL: partition names are built from the run id and the part number (integers).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "create table {table} partition of engine_measure for values in ({engine_run_id})
         partition by list (part)"
    )))
    .execute(&mut **tx)
    .await?;
    for part in 0..parts {
        // Runtime SQL: as above.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create unlogged table {table}_p{part} partition of {table} for values in ({part})"
        )))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Drops what a pass's map parts wrote (nothing to drop: nothing happens).
pub async fn drop_measures(
    db: impl sqlx::PgExecutor<'_>,
    engine_run_id: i64,
) -> Result<(), sqlx::Error> {
    // Runtime SQL: the partition name is built from the run id.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop table if exists {}",
        measure_table(engine_run_id)
    )))
    .execute(db)
    .await?;
    Ok(())
}

/// Parts (map parts too) run side by side; a pass in one transaction (the stand-alone
/// function) waits for them, and they for it.
async fn share_pass_lock(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_advisory_xact_lock_shared(7243001)")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One map part of a full pass: converts the rows of its id range into measurements, each
/// written to the `engine_measure` partition of the part its facility belongs to.
pub async fn map_part(
    tx: &mut Transaction<'_, Postgres>,
    spec: &PartSpec,
    part: i32,
) -> Result<PartReport, EngineError> {
    let mut laps = Laps::new();
    share_pass_lock(tx).await?;
    let usize_part = usize::try_from(part).unwrap_or(usize::MAX);
    let Some(range) = spec.map.get(usize_part) else {
        return Err(EngineError::Spec(format!(
            "engine run {} has no map part {part}",
            spec.engine_run_id
        )));
    };
    let Some(source) = SOURCES.iter().find(|s| s.table == range.table) else {
        return Err(EngineError::Spec(format!(
            "map part {part}: unknown source table {}",
            range.table
        )));
    };
    let sql = measure_insert(
        source,
        &format!("engine_measure (engine_run_id, part, {MEASURE_COLUMNS})"),
        &format!("{}, l.facility_id % {}, ", spec.engine_run_id, spec.parts),
        "",
        "",
        &format!("and t.id between {} and {}", range.lo, range.hi),
    );
    // Runtime SQL: built per source table; the range and the ids are integers.
    let results = sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    laps.mark("map_ms");
    Ok(PartReport {
        pairs: 0,
        results: i64::try_from(results).unwrap_or(i64::MAX),
        events_new: 0,
        events_updated: 0,
        events_escalated: 0,
        events_retracted: 0,
        samples: 0,
        excluded: json!({}),
        timings: Value::Object(laps.timings.clone()),
    })
}

/// Source rows a pass reads: every row for a full pass; for an incremental one, the share of
/// the linked facilities whose pairs it recomputes (planner estimates: exact counts would scan
/// the tables the parts are there to split).
async fn rows_to_compute(
    tx: &mut Transaction<'_, Postgres>,
    full: bool,
) -> Result<u64, sqlx::Error> {
    let tables: Vec<String> = SOURCES.iter().map(|s| s.table.to_owned()).collect();
    let rows: f64 = sqlx::query_scalar!(
        r#"select coalesce(sum(greatest(c.reltuples, 0)), 0)::float8 as "v!" from pg_class c
            where c.oid = any(select to_regclass(t)::oid from unnest($1::text[]) t)"#,
        &tables
    )
    .fetch_one(&mut **tx)
    .await?;
    if full {
        return Ok(rows as u64);
    }
    // Runtime SQL: eng_pairs is a temporary table of this transaction, which the build-time check cannot see.
    let share: f64 = sqlx::query_scalar(
        "select (select count(distinct facility_id) from eng_pairs)::float8
                / greatest((select count(distinct facility_id) from facility_link
                             where status = 'linked'), 1)",
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok((rows * share.min(1.0)).ceil() as u64)
}

/// Runs part `part` of a fanned-out pass in the caller's transaction (which also records the
/// part done, so a redelivered part changes nothing twice): the results of the part's
/// facilities (read from the map's partition for a full pass, through their links' indexes for
/// an incremental one), evaluated and written as a pass in one transaction writes them for
/// those facilities.
pub async fn compute_part(
    tx: &mut Transaction<'_, Postgres>,
    spec: &PartSpec,
    part: i32,
) -> Result<PartReport, EngineError> {
    let mut laps = Laps::new();
    share_pass_lock(tx).await?;
    let scope = if spec.full {
        Scope::Facilities
    } else {
        // Runtime SQL: eng_pairs is a temporary table of this transaction, which the build-time check cannot see.
        sqlx::query(
            "create temp table eng_pairs on commit drop as
             select facility_id, pollutant_key from engine_pair
              where engine_run_id = $1 and facility_id % $2 = $3",
        )
        .bind(spec.engine_run_id)
        .bind(spec.parts)
        .bind(part)
        .execute(&mut **tx)
        .await?;
        Scope::Pairs
    };
    let mapped = !spec.map.is_empty();
    let pairs = part_rows(tx, spec.parts, part, !spec.full, !mapped).await?;
    laps.mark("rows_ms");
    let load = if mapped {
        Load::Mapped {
            engine_run_id: spec.engine_run_id,
            part,
        }
    } else {
        Load::PartRows
    };
    let samples = if spec.first_pass {
        SampleWrite::Insert
    } else {
        SampleWrite::Upsert
    };
    let mut report = compute_scope(
        tx,
        scope,
        load,
        spec.nd_policy,
        spec.engine_run_id,
        samples,
        &mut laps,
    )
    .await?;
    report.pairs = if spec.full {
        // The pairs with a current result (each in one part: parts split by facility).
        // Runtime SQL: eng_m is a temporary table of this transaction, which the build-time check cannot see.
        sqlx::query_scalar(
            "select count(*) from (select distinct facility_id, pollutant_key from eng_m) p",
        )
        .fetch_one(&mut **tx)
        .await?
    } else {
        pairs
    };
    Ok(report)
}

/// `eng_fac`: the part's facilities (of its pairs, when `incremental`); with `rows`, `eng_rows`:
/// their source rows, found through each table's index on its facility key rather than a scan
/// of the whole table per part (a mapped part reads `engine_measure` instead). Returns the
/// part's pairs (incremental) or 0.
async fn part_rows(
    tx: &mut Transaction<'_, Postgres>,
    parts: i32,
    part: i32,
    incremental: bool,
    rows: bool,
) -> Result<i64, sqlx::Error> {
    let only_pairs = if incremental {
        "and l.facility_id in (select facility_id from eng_pairs)"
    } else {
        ""
    };
    // Runtime SQL: a temporary table of this transaction; the pair condition is built.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "create temp table eng_keys on commit drop as
         select l.source, l.source_key, l.facility_id,
                split_part(l.source_key, '|', 1) as app_id,
                nullif(substr(l.source_key, strpos(l.source_key, '|') + 1), '') as wdid
           from facility_link l
          where l.status = 'linked' and l.facility_id % {parts} = {part} {only_pairs}"
    )))
    .execute(&mut **tx)
    .await?;
    // A mapped part reads its measurements from `engine_measure`: its keys only.
    if rows {
        keyed_rows(tx).await?;
    }
    // Runtime SQL: temporary tables of this transaction.
    for sql in [
        "create temp table eng_fac on commit drop as
         select distinct facility_id from eng_keys",
        "alter table eng_fac add primary key (facility_id)",
        "analyze eng_fac",
    ] {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    if !incremental {
        return Ok(0);
    }
    // Runtime SQL: eng_pairs is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query_scalar("select count(*) from eng_pairs")
        .fetch_one(&mut **tx)
        .await
}

/// `eng_rows`: the source rows of the facilities in `eng_keys`, found through each table's
/// index on its facility key.
async fn keyed_rows(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    // Runtime SQL: temporary tables of this transaction.
    for sql in [
        "create temp table eng_rows (source_table text, id bigint) on commit drop",
        // eSMR rows are keyed by the CIWQS place id (esmr_sample_facility_date_idx).
        "insert into eng_rows select 'esmr_sample', t.id
           from eng_keys k join esmr_sample t on t.facility_place_id = k.source_key
          where k.source = 'esmr'",
    ] {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    // SMARTS rows are keyed `app_id|wdid` (app_id is never null; wdid may be): read through
    // the (wdid, app_id, …) index, the rows without a WDID by its null entries.
    for (source, table) in [
        ("smarts_industrial", "smarts_industrial_monitoring"),
        ("smarts_construction", "smarts_construction_monitoring"),
    ] {
        // Runtime SQL: built per SMARTS table, on temporary tables of this transaction.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into eng_rows
             select '{table}', t.id from eng_keys k
               join {table} t on t.wdid = k.wdid and t.app_id = k.app_id
              where k.source = '{source}' and k.wdid is not null
             union all
             select '{table}', t.id from eng_keys k
               join {table} t on t.wdid is null and t.app_id = k.app_id
              where k.source = '{source}' and k.wdid is null"
        )))
        .execute(&mut **tx)
        .await?;
    }
    // Runtime SQL: temporary tables of this transaction.
    for sql in [
        "create index on eng_rows (source_table, id)",
        "analyze eng_rows",
    ] {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Ends a fanned-out pass once every part has reported (`reports`, by part): builds the
/// sample indexes a first pass deferred, refreshes the duplicate candidates and records the
/// run. When a part failed, the run is `failed` with the parts that did (what the others wrote
/// stays), the watermark does not move and the relinked facilities are queued again, so the
/// next pass recomputes what the failed part left. Runs once: a run already ended is reported
/// as recorded.
pub async fn finish_parts(
    pool: &PgPool,
    spec: &PartSpec,
    reports: &[crate::repo::parts::Reported],
) -> Result<Report, EngineError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock(7243001)")
        .execute(&mut *tx)
        .await?;
    let run = sqlx::query!(
        "select mode, status, started_at from violation_engine_run where id = $1 for update",
        spec.engine_run_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut laps = Laps::new();
    if spec.first_pass {
        crate::import::first_load::rebuild_deferred(&mut tx, "violation_sample").await?;
        laps.mark("indexes_ms");
    }
    let orphans = if spec.full {
        retract_unlinked(&mut tx).await?
    } else {
        0
    };
    laps.mark("unlinked_ms");
    let duplicates = refresh_duplicates(&mut tx).await?;
    laps.mark("duplicates_ms");
    let mut sum = PartReport {
        events_retracted: orphans,
        pairs: if spec.full { 0 } else { spec.pairs },
        ..PartReport::default()
    };
    let mut excluded = Vec::new();
    let mut failed = Vec::new();
    let mut part_ms = Vec::new();
    for r in reports {
        let done = r
            .report
            .as_ref()
            .and_then(|v| serde_json::from_value::<PartReport>(v.clone()).ok());
        match (r.status.as_str(), done) {
            ("done", Some(d)) => {
                if spec.full {
                    sum.pairs += d.pairs;
                }
                sum.results += d.results;
                sum.events_new += d.events_new;
                sum.events_updated += d.events_updated;
                sum.events_escalated += d.events_escalated;
                sum.events_retracted += d.events_retracted;
                sum.samples += d.samples;
                excluded.push(d.excluded);
                part_ms.push(r.duration_ms.unwrap_or(0));
            }
            (status, _) => failed.push(format!(
                "part {} of {} {status} after {} deliveries: {}",
                r.part,
                spec.parts,
                r.attempts,
                r.error.as_deref().unwrap_or("no report")
            )),
        }
    }
    let error = (!failed.is_empty()).then(|| failed.join("; "));
    if error.is_none() {
        advance_watermark(&mut tx, spec.up_to, &spec.fingerprint).await?;
    } else {
        sqlx::query!(
            "insert into facility_relink (facility_id)
             select id from facility where id = any($1) on conflict do nothing",
            &spec.relinked
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "delete from engine_pair where engine_run_id = $1",
        spec.engine_run_id
    )
    .execute(&mut *tx)
    .await?;
    drop_measures(&mut *tx, spec.engine_run_id).await?;
    let mut notes = spec.notes.clone();
    notes["excluded"] = merge_exclusions(&excluded);
    notes["finishTimings"] = Value::Object(laps.timings);
    notes["partMs"] = json!({
        "max": part_ms.iter().max(),
        "sum": part_ms.iter().sum::<i64>(),
    });
    notes["elapsedMs"] = json!(
        (chrono::Utc::now() - run.started_at)
            .num_milliseconds()
            .max(0)
    );
    notes["finishMs"] = json!(started.elapsed().as_millis() as u64);
    let report = Report {
        run_id: spec.engine_run_id,
        mode: if run.mode == "full" {
            "full"
        } else {
            "incremental"
        },
        pairs: sum.pairs,
        results: sum.results,
        events_new: sum.events_new,
        events_updated: sum.events_updated,
        events_escalated: sum.events_escalated,
        events_retracted: sum.events_retracted,
        samples: sum.samples,
        duplicates,
        notes,
    };
    if run.status != "running" {
        // Ended by an earlier delivery of this finish: nothing is written twice.
        tx.rollback().await?;
        return Ok(report);
    }
    record_run(&mut tx, &report, error.as_deref()).await?;
    tx.commit().await?;
    Ok(report)
}

/// What the parts of a full pass leave of facilities that no part computed (no linked record:
/// merged away, or every record moved to another facility): their events are retracted and
/// their samples, NAL statistics, Levels and exclusions removed, as a pass in one transaction
/// does for every pair it finds no result for. Returns the events retracted.
async fn retract_unlinked(tx: &mut Transaction<'_, Postgres>) -> Result<i64, sqlx::Error> {
    const UNLINKED: &str = "not exists (select 1 from facility_link l
                                        where l.facility_id = x.facility_id and l.status = 'linked')";
    let retracted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "update violation_event x set retracted_at = now(), computed_at = now()
          where x.retracted_at is null and {UNLINKED}"
    )))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    for table in [
        "nal_annual",
        "nal_level",
        "violation_exclusion",
        "violation_sample",
    ] {
        // Runtime SQL: the table comes from this list, the condition is shared.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "delete from {table} x where {UNLINKED}"
        )))
        .execute(&mut **tx)
        .await?;
    }
    Ok(i64::try_from(retracted).unwrap_or(i64::MAX))
}

/// The exclusion notes of several parts as one: results summed per source and reason, and
/// per unknown unit (the 50 most frequent).
fn merge_exclusions(parts: &[Value]) -> Value {
    let mut by_reason: std::collections::BTreeMap<(String, String), i64> = Default::default();
    let mut units: std::collections::BTreeMap<String, i64> = Default::default();
    for p in parts {
        for r in p["byReason"].as_array().into_iter().flatten() {
            let key = (
                r["source"].as_str().unwrap_or_default().to_owned(),
                r["reason"].as_str().unwrap_or_default().to_owned(),
            );
            *by_reason.entry(key).or_default() += r["results"].as_i64().unwrap_or(0);
        }
        for u in p["unitsNotCompared"].as_array().into_iter().flatten() {
            *units
                .entry(u["unit"].as_str().unwrap_or_default().to_owned())
                .or_default() += u["results"].as_i64().unwrap_or(0);
        }
    }
    let mut units: Vec<(String, i64)> = units.into_iter().collect();
    units.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    units.truncate(50);
    json!({
        "byReason": by_reason.into_iter().map(|((s, r), n)| json!({"source": s, "reason": r, "results": n})).collect::<Vec<_>>(),
        "unitsNotCompared": units.into_iter().map(|(u, n)| json!({"unit": u, "results": n})).collect::<Vec<_>>(),
    })
}

/// Records a failed run (the computing transaction rolled back, so nothing else changed).
pub async fn record_failure(
    pool: &PgPool,
    opts: &Options,
    error: &EngineError,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into violation_engine_run (trigger, sync_run_id, mode, status, finished_at, error)
         values ($1, $2, 'incremental', 'failed', now(), $3)",
        &opts.trigger,
        opts.sync_run_id,
        error.to_string()
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a fanned-out pass failed whose finish could not run (its parts' writes stay; the
/// watermark did not move, so the next pass recomputes what changed).
pub async fn abandon(
    pool: &PgPool,
    engine_run_id: i64,
    error: &EngineError,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update violation_engine_run set status = 'failed', finished_at = now(), error = $2
          where id = $1 and status = 'running'",
        engine_run_id,
        format!("finish: {error}")
    )
    .execute(pool)
    .await?;
    drop_measures(pool, engine_run_id).await
}

/// Everything outside the source rows that changes results: a change forces a full run.
async fn fingerprint(
    tx: &mut Transaction<'_, Postgres>,
    policy: NdPolicy,
) -> Result<String, sqlx::Error> {
    // Link changes are not part of it: the linker queues the facilities whose records changed
    // (`facility_relink`) and only their pairs are recomputed.
    let benchmarks: String = sqlx::query_scalar!(
        r#"select coalesce((select md5(string_agg(concat_ws('|', id, pollutant_key, benchmark_type,
                              water_type, fraction, value, value_max, unit, source,
                              effective_date, unverified), ';' order by id)) from benchmark), '') as "v!""#
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(format!("v{ENGINE_VERSION}:{policy}:{benchmarks}"))
}

/// `eng_pairs`: the facility x pollutant pairs to recompute (`after` = None: all of them), and
/// the facilities drained from `facility_relink` (recomputed for every pollutant).
async fn load_pairs(
    tx: &mut Transaction<'_, Postgres>,
    after: Option<i64>,
) -> Result<(i64, Vec<i64>), sqlx::Error> {
    // Runtime SQL: eng_pairs is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "create temp table eng_pairs (facility_id bigint, pollutant_key text,
                                      primary key (facility_id, pollutant_key)) on commit drop",
    )
    .execute(&mut **tx)
    .await?;
    for s in SOURCES {
        let changed = if after.is_some() {
            "(t.changed_run_id > $1 or t.withdrawn_run_id > $1)"
        } else {
            "$1::bigint is null"
        };
        // Runtime SQL: built per source (its table and columns) and scope, on the temporary table eng_pairs.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into eng_pairs
             select distinct l.facility_id, p.pollutant_key
             from {table} t
             join parameter_map p on p.parameter = t.parameter and p.pollutant_key is not null
             join facility_link l on l.source = '{source}' and l.status = 'linked'
                                 and l.source_key = {key}
             where {changed}
             on conflict do nothing",
            table = s.table,
            source = s.source,
            key = s.facility_key,
        )))
        .bind(after)
        .execute(&mut **tx)
        .await?;
    }
    // Facilities whose source records changed (facility linking): every pollutant, so that
    // events of a facility that lost its records are retracted and the gaining one computed.
    // Runtime SQL: eng_pairs is a temporary table of this transaction, which the build-time check cannot see.
    let relinked: Vec<i64> = sqlx::query_scalar(
        "with q as (delete from facility_relink returning facility_id),
              pairs as (insert into eng_pairs
                        select q.facility_id, p.key from q cross join pollutant p
                        on conflict do nothing)
         select coalesce(array_agg(facility_id order by facility_id), '{}') from q",
    )
    .fetch_one(&mut **tx)
    .await?;
    // Pairs whose events exist but whose results all vanished (withdrawn) are covered above
    // (withdrawn rows still carry their facility and parameter).
    // Runtime SQL: eng_pairs is a temporary table of this transaction, which the build-time check cannot see.
    let pairs = sqlx::query_scalar("select count(*) from eng_pairs")
        .fetch_one(&mut **tx)
        .await?;
    Ok((pairs, relinked))
}

/// The columns of a measurement (`eng_m`, `engine_measure`), in order.
const MEASURE_COLUMNS: &str = "source, source_table, source_row_id, row_key, row_ord, row_hash, \
     facility_id, pollutant_key, fraction, sample_date, reporting_year, eff_date, sample_key, \
     qualifier, qclass, value, limit_value, raw_value, raw_unit, unit, exclusion";

/// The statement that converts the rows of source table `s` into measurements and inserts them
/// into `target` (a table and its column list), each row's values after `prefix`; `rows_join`,
/// `pair_join` and `range` narrow the rows read.
fn measure_insert(
    s: &Source,
    target: &str,
    prefix: &str,
    rows_join: &str,
    pair_join: &str,
    range: &str,
) -> String {
    format!(
        "insert into {target}
             select {prefix}'{source}', '{table}', t.id, t.row_key, t.row_ord, t.row_hash, l.facility_id,
                    p.pollutant_key, p.fraction, {date}, y.reporting_year,
                    coalesce({date}, make_date(y.reporting_year, 7, 1)),
                    {sample_key}, {qualifier}, q.qclass,
                    t.result * f.factor, {limit} * f.factor, t.result, t.units, f.unit,
                    coalesce({exclusion},
                             case when {date} is null then 'no valid sample date'
                                  when {date} > current_date then 'sample date in the future'
                                  when {year} is not null and {year} <> y.reporting_year
                                      then 'reporting year contradicts the sample date'
                                  when f.factor is null then
                                      case when t.units is null then 'no unit'
                                           when u.kind = 'unknown' then 'unknown unit'
                                           else 'unit not comparable' end
                                  when q.qclass <> 'nd' and t.result is null then 'missing result'
                                  when p.pollutant_key = 'ph' and (t.result < 0 or t.result > 14)
                                      then 'impossible pH value'
                                  when t.result < 0 then 'negative result' end)
             from {table} t
             {rows_join}
             join parameter_map p on p.parameter = t.parameter and p.pollutant_key is not null
             join facility_link l on l.source = '{source}' and l.status = 'linked'
                                 and l.source_key = {key}
             {pair_join}
             left join unit_map u on u.unit = t.units
             cross join lateral (
                 select case when upper(btrim({qualifier})) in ('ND', '<', '<=') then 'nd'
                             when upper(btrim({qualifier})) = 'DNQ' then 'dnq'
                             when btrim({qualifier}) in ('>', '>=') then 'gt'
                             else 'detected' end as qclass) q
             cross join lateral (
                 select case when p.pollutant_key = 'ph'
                             then case when u.kind = 'ph' or t.units is null then 1::numeric end
                             else case when u.kind = 'mass' then u.to_mg_per_l end end as factor,
                        case when p.pollutant_key = 'ph' then 'pH units' else 'mg/L' end as unit) f
             cross join lateral (
                 select coalesce(extract(year from {date})::integer
                                     - (extract(month from {date}) < 7)::integer,
                                 {year}) as reporting_year) y
             where t.withdrawn_run_id is null {range}",
        source = s.source,
        table = s.table,
        date = s.date,
        year = s.year,
        sample_key = s.sample_key,
        qualifier = s.qualifier,
        limit = s.limit,
        exclusion = s.exclusion,
        key = s.facility_key,
    )
}

/// `eng_m`: every current result of `scope` (read as `load` says), converted to the benchmark
/// unit, with `exclusion` saying why a result cannot be compared.
async fn load_measurements(
    tx: &mut Transaction<'_, Postgres>,
    scope: Scope,
    load: Load,
) -> Result<i64, sqlx::Error> {
    // Runtime SQL: eng_m is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "create temp table eng_m (
             source text, source_table text, source_row_id bigint, row_key bigint, row_ord integer,
             row_hash bytea,
             facility_id bigint, pollutant_key text, fraction text, sample_date date,
             reporting_year integer, eff_date date, sample_key text, qualifier text, qclass text,
             value numeric, limit_value numeric, raw_value numeric, raw_unit text, unit text,
             exclusion text
         ) on commit drop",
    )
    .execute(&mut **tx)
    .await?;
    let total = match load {
        // Runtime SQL: eng_m is a temporary table of this transaction; the partition is found
        // by its run and part (pruned to one).
        Load::Mapped {
            engine_run_id,
            part,
        } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into eng_m ({MEASURE_COLUMNS}) select {MEASURE_COLUMNS} from engine_measure
              where engine_run_id = $1 and part = $2"
        )))
        .bind(engine_run_id)
        .bind(part)
        .execute(&mut **tx)
        .await?
        .rows_affected() as i64,
        Load::Sources | Load::PartRows => {
            let pair_join = match scope {
                Scope::Pairs => {
                    "join eng_pairs ep on ep.facility_id = l.facility_id and ep.pollutant_key = p.pollutant_key"
                }
                Scope::All | Scope::Facilities => "",
            };
            let mut total = 0;
            for s in SOURCES {
                let rows_join = if matches!(load, Load::PartRows) {
                    format!(
                        "join eng_rows r on r.source_table = '{}' and r.id = t.id",
                        s.table
                    )
                } else {
                    String::new()
                };
                let target = format!("eng_m ({MEASURE_COLUMNS})");
                let sql = measure_insert(s, &target, "", &rows_join, pair_join, "");
                // Runtime SQL: built per source table, on temporary tables of this transaction.
                total += sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut **tx)
                    .await?
                    .rows_affected() as i64;
            }
            total
        }
    };
    // A published row repeated verbatim (same key, same content) is one result. Only a key
    // the file repeats can be repeated verbatim: its later occurrences have row_ord > 0, so
    // only those keys are ranked (ranking every result sorted millions of rows).
    // Runtime SQL: eng_m is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "update eng_m m set exclusion = 'duplicate row'
         from (select e.source_table, e.source_row_id,
                      row_number() over (partition by e.source_table, e.row_key, e.row_hash
                                         order by e.source_row_id) as n
               from eng_m e
               join (select distinct source_table, row_key from eng_m where row_ord > 0) r
                 on r.source_table = e.source_table and r.row_key = e.row_key) d
         where d.n > 1 and m.exclusion is null
           and m.source_table = d.source_table and m.source_row_id = d.source_row_id",
    )
    .execute(&mut **tx)
    .await?;
    for index in [
        "create index on eng_m (facility_id, pollutant_key, reporting_year)",
        "create index on eng_m (source_table, source_row_id)",
    ] {
        sqlx::query(index).execute(&mut **tx).await?;
    }
    // Runtime SQL: eng_m is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query("analyze eng_m").execute(&mut **tx).await?;
    Ok(total)
}

/// The exclusion reasons that say a published row is wrong or unusable (not ones the rules
/// make by design, such as influent or calculated eSMR rows): stored per event pair in
/// `violation_exclusion` and reported in `data_quality_issue`.
pub const DATA_EXCLUSIONS: &[&str] = &[
    "no valid sample date",
    "sample date in the future",
    "reporting year contradicts the sample date",
    "no benchmark in effect on the sample date",
    "missing result",
    "impossible pH value",
    "negative result",
    "no unit",
    "unknown unit",
    "unit not comparable",
];

/// Stores the results of the recomputed pairs that were excluded for a [`DATA_EXCLUSIONS`]
/// reason (shown with the events of their facility, pollutant and year), and reports each in
/// `data_quality_issue` once, with its source file and line; an issue whose row is no longer
/// excluded for that reason is marked resolved.
async fn store_exclusions(
    tx: &mut Transaction<'_, Postgres>,
    scope: Scope,
    engine_run_id: i64,
) -> Result<(), sqlx::Error> {
    let pairs = scope.condition("x");
    // Runtime SQL: the scope condition is built (all pairs, a part's facilities, or the pairs in the temporary table eng_pairs).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "delete from violation_exclusion x where {pairs}"
    )))
    .execute(&mut **tx)
    .await?;
    // Runtime SQL: eng_m is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "insert into violation_exclusion (facility_id, pollutant_key, reporting_year, source,
                                          source_table, source_row_id, reason, sample_date,
                                          raw_value, raw_unit, engine_run_id)
         select facility_id, pollutant_key, reporting_year, source, source_table, source_row_id,
                exclusion, sample_date, raw_value, raw_unit, $2
         from eng_m where exclusion = any($1)
              -- A pollutant no benchmark names has no events to show its exclusions with
              -- (data_quality_issue below still reports them).
              and pollutant_key in (select key from pollutant)
         on conflict (source_table, source_row_id) do update
            set facility_id = excluded.facility_id, pollutant_key = excluded.pollutant_key,
                reporting_year = excluded.reporting_year, reason = excluded.reason,
                sample_date = excluded.sample_date, raw_value = excluded.raw_value,
                raw_unit = excluded.raw_unit, engine_run_id = excluded.engine_run_id",
    )
    .bind(DATA_EXCLUSIONS)
    .bind(engine_run_id)
    .execute(&mut **tx)
    .await?;
    for s in SOURCES {
        // Text built from the compile-time source table: which table and columns to read.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into data_quality_issue (run_id, file_id, dataset, source_file, line,
                                             column_name, action, reason, value, source_table,
                                             source_row_id)
             select f.run_id, f.id, '{dataset}', coalesce(f.source_url, '{table}'), t.source_line,
                    case when m.exclusion like 'reporting year%' then '{year_column}'
                         when m.exclusion like '%date%' then '{date_column}'
                         when m.exclusion like '%unit%' then 'units'
                         else 'result' end,
                    'value_excluded', m.exclusion,
                    case when m.exclusion like 'reporting year%' then t.{year_column}::text
                         when m.exclusion like '%date%' then m.sample_date::text
                         when m.exclusion like '%unit%' then m.raw_unit
                         else m.raw_value::text end,
                    m.source_table, m.source_row_id
             from eng_m m
             join {table} t on t.id = m.source_row_id
             left join lateral (select id, run_id, source_url from sync_file
                                 where run_id = t.changed_run_id and dataset = '{dataset}'
                                 order by id limit 1) f on true
             where m.source_table = '{table}' and m.exclusion = any($1)
             on conflict (source_table, source_row_id, reason) where action = 'value_excluded'
             do nothing",
            dataset = s.dataset,
            table = s.table,
            date_column = s.date_column,
            year_column = s.year_column,
        )))
        .bind(DATA_EXCLUSIONS)
        .execute(&mut **tx)
        .await?;
    }
    // Runtime SQL: eng_m is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "update data_quality_issue q set resolved = true
           from eng_m m
          where q.action = 'value_excluded' and not q.resolved
            and q.source_table = m.source_table and q.source_row_id = m.source_row_id
            and m.exclusion is distinct from q.reason",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Results that could not be compared, by source and reason, and the unknown unit spellings.
async fn exclusions(tx: &mut Transaction<'_, Postgres>) -> Result<Value, sqlx::Error> {
    // Runtime SQL: eng_m is a temporary table of this transaction, which the build-time check cannot see.
    let by_reason: Vec<(String, String, i64)> = sqlx::query_as(
        "select source, exclusion, count(*) from eng_m where exclusion is not null
         group by 1, 2 order by 1, 2",
    )
    .fetch_all(&mut **tx)
    .await?;
    // Runtime SQL: eng_m is a temporary table of this transaction, which the build-time check cannot see.
    let units: Vec<(String, i64)> = sqlx::query_as(
        "select raw_unit, count(*) from eng_m where exclusion in ('unknown unit', 'unit not comparable')
         group by 1 order by 2 desc, 1 limit 50",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(json!({
        "byReason": by_reason.iter().map(|(s, r, n)| json!({"source": s, "reason": r, "results": n})).collect::<Vec<_>>(),
        "unitsNotCompared": units.iter().map(|(u, n)| json!({"unit": u, "results": n})).collect::<Vec<_>>(),
    }))
}

/// Fills `eng_b` (benchmarks in the canonical unit with their validity window), `eng_s`
/// (candidate violation samples), `eng_annual` (NAL statistics) and `eng_e` (events).
async fn evaluate(tx: &mut Transaction<'_, Postgres>, policy: NdPolicy) -> Result<(), sqlx::Error> {
    let statements: Vec<String> = vec![
        // Benchmarks converted to mg/L (or pH units), valid from their effective date until the
        // next value of the same series takes effect (lead action level 0.015 -> 0.010).
        "create temp table eng_b on commit drop as
         select b.id, b.pollutant_key, b.benchmark_type, b.water_type, b.fraction, b.unverified,
                b.value * coalesce(u.to_mg_per_l, 1) as v, b.value_max * coalesce(u.to_mg_per_l, 1) as vmax,
                case when u.kind = 'ph' then 'pH units' else 'mg/L' end as unit,
                coalesce(b.effective_date, '-infinity'::date) as valid_from,
                coalesce(lead(b.effective_date) over (
                    partition by b.pollutant_key, b.benchmark_type, b.water_type, b.fraction, b.source
                    order by b.effective_date nulls first), 'infinity'::date) as valid_to
         from benchmark b join unit_map u on u.unit = b.unit
         where u.kind in ('mass', 'ph')".into(),
        // A result dated outside the period of every benchmark for its pollutant (before the
        // IGP's NALs took effect, say) cannot be judged.
        "update eng_m m set exclusion = 'no benchmark in effect on the sample date'
         where m.exclusion is null
           and not exists (select 1 from eng_b b
                           where b.pollutant_key = m.pollutant_key
                             and m.eff_date >= b.valid_from and m.eff_date < b.valid_to)".into(),
        "create temp table eng_s (
             facility_id bigint, pollutant_key text, reporting_year integer, benchmark_type text,
             source text, source_table text, source_row_id bigint, benchmark_id bigint,
             measured_value numeric, measured_unit text, benchmark_value numeric,
             benchmark_unit text, ratio numeric, exceeds boolean, non_detect boolean,
             qualifier text, raw_value numeric, raw_unit text, screening boolean,
             detected_on date, sample_key text, unverified boolean
         ) on commit drop".into(),
        // Annual NAL: every comparable industrial result of the year enters the average
        // (dissolved fractions do not: IGP metals are total).
        format!(
            "insert into eng_s
             select m.facility_id, m.pollutant_key, m.reporting_year, 'NAL_ANNUAL', m.source,
                    m.source_table, m.source_row_id, b.id, m.value, m.unit, b.v, b.unit,
                    {RATIO}, {EXCEEDS}, m.qclass = 'nd', m.qualifier, m.raw_value, m.raw_unit,
                    false, m.sample_date, m.sample_key, b.unverified
             from eng_m m
             join eng_b b on b.pollutant_key = m.pollutant_key and b.benchmark_type = 'NAL_ANNUAL'
                         and m.eff_date >= b.valid_from and m.eff_date < b.valid_to
             where m.source = 'smarts_industrial' and m.exclusion is null
               and m.fraction <> 'dissolved'"
        ),
        // Instantaneous NAL (TSS, O&G maxima; pH range): the results above / outside it.
        format!(
            "insert into eng_s
             select m.facility_id, m.pollutant_key, m.reporting_year, 'NAL_INSTANT', m.source,
                    m.source_table, m.source_row_id, b.id, m.value, m.unit, coalesce(b.vmax, b.v),
                    b.unit, {RATIO}, true, false, m.qualifier, m.raw_value, m.raw_unit, false,
                    m.sample_date, m.sample_key, b.unverified
             from eng_m m
             join eng_b b on b.pollutant_key = m.pollutant_key and b.benchmark_type = 'NAL_INSTANT'
                         and m.eff_date >= b.valid_from and m.eff_date < b.valid_to
             where m.source = 'smarts_industrial' and m.exclusion is null
               and m.fraction <> 'dissolved' and {EXCEEDS}"
        ),
        // Every other benchmark, each result on its own, every applicable benchmark (not the
        // first found). Screening: a dissolved criterion against a total result (or the
        // reverse), or a drinking-water standard against discharge.
        format!(
            "insert into eng_s
             select m.facility_id, m.pollutant_key, m.reporting_year, b.benchmark_type, m.source,
                    m.source_table, m.source_row_id, b.id, m.value, m.unit, coalesce(b.vmax, b.v),
                    b.unit, {RATIO}, true, false, m.qualifier, m.raw_value, m.raw_unit,
                    b.water_type = 'drinking'
                      or (b.fraction = 'dissolved' and m.fraction <> 'dissolved')
                      or (b.fraction in ('total', 'total_recoverable') and m.fraction = 'dissolved'),
                    m.sample_date, m.sample_key, b.unverified
             from eng_m m
             join eng_b b on b.pollutant_key = m.pollutant_key
                         and b.benchmark_type not in ('NAL_ANNUAL', 'NAL_INSTANT', 'OTHER')
                         and m.eff_date >= b.valid_from and m.eff_date < b.valid_to
             where m.exclusion is null and {EXCEEDS}"
        ),
                "analyze eng_s".into(),
        // NAL statistics under all three ND conventions; the configured one decides.
        format!(
            "create temp table eng_annual on commit drop as
             select facility_id, pollutant_key, reporting_year, benchmark_id, nal,
                    sample_count, nd_count, nd_without_limit, avg_nd_zero, avg_nd_half_mdl,
                    avg_nd_dropped, '{policy}'::text as nd_policy,
                    {avg} as average,
                    coalesce({avg} > nal, false) as exceeds,
                    (coalesce(avg_nd_zero > nal, false) <> coalesce(avg_nd_half_mdl > nal, false)
                     or coalesce(avg_nd_zero > nal, false) <> coalesce(avg_nd_dropped > nal, false))
                        as policy_sensitive,
                                        first_date, last_date, unverified, exceedance_count
             from (
                 select s.facility_id, s.pollutant_key, s.reporting_year,
                        min(s.benchmark_id) as benchmark_id, min(s.benchmark_value) as nal,
                        count(*)::integer as sample_count,
                        (count(*) filter (where m.qclass = 'nd'))::integer as nd_count,
                        (count(*) filter (where m.qclass = 'nd' and m.limit_value is null))::integer
                            as nd_without_limit,
                        avg(case when m.qclass = 'nd' then 0 else m.value end) as avg_nd_zero,
                        avg(case when m.qclass = 'nd' then coalesce(m.limit_value / 2, 0) else m.value end)
                            as avg_nd_half_mdl,
                        avg(m.value) filter (where m.qclass <> 'nd') as avg_nd_dropped,
                                                min(s.detected_on) as first_date, max(s.detected_on) as last_date,
                        bool_or(s.unverified) as unverified,
                        (count(*) filter (where s.exceeds))::integer as exceedance_count
                 from eng_s s
                 join eng_m m on m.source_table = s.source_table and m.source_row_id = s.source_row_id
                 where s.benchmark_type = 'NAL_ANNUAL'
                 group by s.facility_id, s.pollutant_key, s.reporting_year
             ) g",
            avg = match policy {
                NdPolicy::Zero => "avg_nd_zero",
                NdPolicy::HalfMdl => "avg_nd_half_mdl",
                NdPolicy::Dropped => "avg_nd_dropped",
            }
        ),
        // Instantaneous: two or more distinct samples in the year.
        "create temp table eng_instant on commit drop as
         select facility_id, pollutant_key, reporting_year, count(distinct sample_key)::integer as samples
         from eng_s where benchmark_type = 'NAL_INSTANT'
         group by 1, 2, 3".into(),
        "delete from eng_s s using eng_annual a
         where s.benchmark_type = 'NAL_ANNUAL' and not a.exceeds
           and a.facility_id = s.facility_id and a.pollutant_key = s.pollutant_key
           and a.reporting_year = s.reporting_year".into(),
        "delete from eng_s s using eng_instant i
         where s.benchmark_type = 'NAL_INSTANT' and i.samples < 2
           and i.facility_id = s.facility_id and i.pollutant_key = s.pollutant_key
           and i.reporting_year = s.reporting_year".into(),
        // Events: one per facility x pollutant x reporting year x benchmark type x source.
        "create temp table eng_e on commit drop as
         select a.facility_id, a.pollutant_key, a.reporting_year, 'NAL_ANNUAL'::text as benchmark_type,
                'smarts_industrial'::text as source, 'annual_average'::text as measure,
                a.benchmark_id, a.average as value, 'mg/L'::text as unit,
                                a.sample_count, a.exceedance_count,
                a.average / a.nal as max_ratio, violation_severity(a.average / a.nal) as severity,
                a.first_date, a.last_date, a.nd_policy, a.policy_sensitive, false as screening,
                a.unverified
         from eng_annual a where a.exceeds
         union all
         select s.facility_id, s.pollutant_key, s.reporting_year, s.benchmark_type, s.source,
                case when s.benchmark_type = 'NAL_INSTANT' then 'instantaneous' else 'sample' end,
                (array_agg(s.benchmark_id order by s.ratio desc nulls last, s.benchmark_id))[1],
                (array_agg(s.measured_value order by s.ratio desc nulls last, s.benchmark_id))[1],
                (array_agg(s.measured_unit order by s.ratio desc nulls last, s.benchmark_id))[1],
                count(distinct s.sample_key)::integer, count(*)::integer, max(s.ratio),
                violation_severity(max(s.ratio)), min(s.detected_on), max(s.detected_on),
                null, false, bool_and(s.screening), bool_or(s.unverified)
         from eng_s s where s.benchmark_type <> 'NAL_ANNUAL'
         group by s.facility_id, s.pollutant_key, s.reporting_year, s.benchmark_type, s.source".into(),
    ];
    for sql in statements {
        // Runtime SQL: statements on temporary tables of this transaction, some built per source.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

struct Written {
    new: i64,
    updated: i64,
    escalated: i64,
    retracted: i64,
    samples: i64,
}

/// Writes events, samples, NAL statistics and Levels for the pairs of `scope`.
async fn write_results(
    tx: &mut Transaction<'_, Postgres>,
    scope: Scope,
    write: SampleWrite,
) -> Result<Written, sqlx::Error> {
    let in_pairs = |alias: &str| scope.condition(alias);
    const FIELDS: &str = "measure, benchmark_id, value, unit, sample_count, exceedance_count, \
                          max_ratio, severity, first_date, last_date, nd_policy, policy_sensitive, \
                          screening, unverified";
    // Runtime SQL: the scope condition is built, and the rows come from temporary tables of this transaction.
    let (new, updated, escalated): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "with up as (
             insert into violation_event as e
                 (facility_id, pollutant_key, reporting_year, benchmark_type, source, {FIELDS})
             select facility_id, pollutant_key, reporting_year, benchmark_type, source, {FIELDS}
             from eng_e
             on conflict on constraint violation_event_uniq do update
                set measure = excluded.measure, benchmark_id = excluded.benchmark_id,
                    value = excluded.value, unit = excluded.unit,
                    sample_count = excluded.sample_count, exceedance_count = excluded.exceedance_count,
                    max_ratio = excluded.max_ratio, severity = excluded.severity,
                    first_date = excluded.first_date, last_date = excluded.last_date,
                    nd_policy = excluded.nd_policy, policy_sensitive = excluded.policy_sensitive,
                    screening = excluded.screening, unverified = excluded.unverified,
                    escalated_at = case when e.retracted_at is null
                                         and severity_rank(excluded.severity) > severity_rank(e.severity)
                                        then now() else e.escalated_at end,
                    detected_at = case when e.retracted_at is not null then now() else e.detected_at end,
                    retracted_at = null,
                    computed_at = now()
              where ({e_fields}) is distinct from ({x_fields}) or e.retracted_at is not null
             returning (xmax = 0) as inserted, e.escalated_at = now() as escalated
         )
         select count(*) filter (where inserted), count(*) filter (where not inserted),
                count(*) filter (where escalated)
         from up",
        e_fields = FIELDS
            .split(", ")
            .map(|f| format!("e.{}", f.trim()))
            .collect::<Vec<_>>()
            .join(", "),
        x_fields = FIELDS
            .split(", ")
            .map(|f| format!("excluded.{}", f.trim()))
            .collect::<Vec<_>>()
            .join(", "),
    )))
    .fetch_one(&mut **tx)
    .await?;

    // Runtime SQL: the scope condition is built (all pairs, or those in the temporary table eng_pairs).
    let retracted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "update violation_event e set retracted_at = now(), computed_at = now()
         where e.retracted_at is null and {pairs}
           and not exists (select 1 from eng_e n
                           where n.facility_id = e.facility_id and n.pollutant_key = e.pollutant_key
                             and n.reporting_year = e.reporting_year
                             and n.benchmark_type = e.benchmark_type and n.source = e.source)",
        pairs = in_pairs("e"),
    )))
    .execute(&mut **tx)
    .await?
    .rows_affected() as i64;

    let mut statements = vec![
        "create temp table eng_s2 on commit drop as
         select s.*, e.id as event_id
         from eng_s s
         join violation_event e on e.facility_id = s.facility_id and e.pollutant_key = s.pollutant_key
                               and e.reporting_year = s.reporting_year
                               and e.benchmark_type = s.benchmark_type and e.source = s.source
         where e.retracted_at is null"
            .to_owned(),
        format!(
            "delete from nal_annual a where {pairs}",
            pairs = in_pairs("a")
        ),
        "insert into nal_annual (facility_id, pollutant_key, reporting_year, benchmark_id, nal,
                                 sample_count, nd_count, nd_without_limit, avg_nd_zero,
                                 avg_nd_half_mdl, avg_nd_dropped, nd_policy, average, exceeds,
                                 policy_sensitive, instant_count)
         select a.facility_id, a.pollutant_key, a.reporting_year, a.benchmark_id, a.nal,
                a.sample_count, a.nd_count, a.nd_without_limit, a.avg_nd_zero, a.avg_nd_half_mdl,
                a.avg_nd_dropped, a.nd_policy, a.average, a.exceeds, a.policy_sensitive,
                coalesce(i.samples, 0)
         from eng_annual a
         left join eng_instant i using (facility_id, pollutant_key, reporting_year)"
            .to_owned(),
        format!("delete from nal_level l where {pairs}", pairs = in_pairs("l")),
        // Baseline -> Level 1 on the July 1 after the first exceeding year; -> Level 2 on the
        // July 1 after a later exceeding year (Level 1 starts in the year after the first).
        format!(
            "insert into nal_level (facility_id, pollutant_key, first_exceedance_year,
                                    second_exceedance_year, exceedance_years, level_1_since,
                                    level_2_since)
             select facility_id, pollutant_key, ys[1], ys[2], ys, make_date(ys[1] + 1, 7, 1),
                    case when ys[2] is not null then make_date(ys[2] + 1, 7, 1) end
             from (select facility_id, pollutant_key,
                          array_agg(distinct reporting_year order by reporting_year) as ys
                   from violation_event e
                   where e.source = 'smarts_industrial' and e.retracted_at is null
                     and e.benchmark_type in ('NAL_ANNUAL', 'NAL_INSTANT') and {pairs}
                   group by facility_id, pollutant_key) t",
            pairs = in_pairs("e")
        ),
    ];
    if write == SampleWrite::Upsert {
        // The samples of the scope's events that the results no longer support. (A first pass
        // writes into an empty table: its parts find nothing of theirs there.)
        statements.insert(
            1,
            format!(
                "delete from violation_sample v using violation_event e
                 where v.event_id = e.id and {pairs}
                   and not exists (select 1 from eng_s2 n
                                   where n.source_table = v.source_table
                                     and n.source_row_id = v.source_row_id
                                     and n.benchmark_id = v.benchmark_id)",
                pairs = in_pairs("e")
            ),
        );
    }
    for sql in statements {
        // Runtime SQL: statements on temporary tables of this transaction, some built per source.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await?;
    }
    // The first full pass writes millions of samples into an empty table: as a first load
    // does, it inserts without the conflict check and builds the indexes (and checks the
    // foreign keys) once afterwards (in this transaction, or in the finish of a fanned-out pass).
    if write == SampleWrite::FirstPass {
        crate::import::first_load::defer_indexes(tx, "violation_sample").await?;
    }
    const INSERT: &str = "insert into violation_sample
             (event_id, source, source_table, source_row_id, benchmark_id, measured_value,
              measured_unit, benchmark_value, benchmark_unit, ratio, severity, detected_on,
              exceeds, non_detect, qualifier, raw_value, raw_unit, screening, facility_id,
              pollutant_key)
         select event_id, source, source_table, source_row_id, benchmark_id, measured_value,
                measured_unit, benchmark_value, benchmark_unit, ratio,
                case when exceeds then violation_severity(ratio) end, detected_on, exceeds,
                non_detect, qualifier, raw_value, raw_unit, screening, facility_id, pollutant_key
         from eng_s2";
    const UPSERT: &str = "on conflict (source_table, source_row_id, benchmark_id) do update
            set event_id = excluded.event_id, measured_value = excluded.measured_value,
                measured_unit = excluded.measured_unit, benchmark_value = excluded.benchmark_value,
                benchmark_unit = excluded.benchmark_unit, ratio = excluded.ratio,
                severity = excluded.severity, detected_on = excluded.detected_on,
                exceeds = excluded.exceeds, non_detect = excluded.non_detect,
                qualifier = excluded.qualifier, raw_value = excluded.raw_value,
                raw_unit = excluded.raw_unit, screening = excluded.screening,
                facility_id = excluded.facility_id, pollutant_key = excluded.pollutant_key
          where (violation_sample.event_id, violation_sample.measured_value, violation_sample.ratio,
                 violation_sample.severity, violation_sample.detected_on, violation_sample.exceeds,
                 violation_sample.non_detect, violation_sample.qualifier, violation_sample.raw_value,
                 violation_sample.raw_unit, violation_sample.screening, violation_sample.facility_id)
                is distinct from
                (excluded.event_id, excluded.measured_value, excluded.ratio, excluded.severity,
                 excluded.detected_on, excluded.exceeds, excluded.non_detect, excluded.qualifier,
                 excluded.raw_value, excluded.raw_unit, excluded.screening, excluded.facility_id)";
    // Runtime SQL: eng_s2 is a temporary table of this transaction, which the build-time check
    // cannot see; an empty table needs no conflict clause.
    let sql = match write {
        SampleWrite::FirstPass | SampleWrite::Insert => INSERT.to_owned(),
        SampleWrite::Upsert => format!("{INSERT}\n{UPSERT}"),
    };
    let samples = sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut **tx)
        .await?
        .rows_affected() as i64;
    if write == SampleWrite::FirstPass {
        crate::import::first_load::rebuild_deferred(tx, "violation_sample").await?;
    }
    Ok(Written {
        new,
        updated,
        escalated,
        retracted,
        samples,
    })
}

/// Duplicate candidates (seed 000 section 3.2): a computed event and a SMARTS regulatory
/// violation of the same canonical facility, the violation dated within 30 days of the event's
/// samples. Score 0.9 when the violation's text names the pollutant (base name or abbreviation),
/// 0.6 when it is an effluent / NAL / exceedance / monitoring violation without naming it. Reported in `violation_duplicate`, never
/// merged. Returns the number of current candidates.
async fn refresh_duplicates(tx: &mut Transaction<'_, Postgres>) -> Result<i64, sqlx::Error> {
    // Runtime SQL: eng_dup is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        r"create temp table eng_dup on commit drop as
         select e.facility_id, e.id as event_id, v.id as smarts_violation_id,
                case when t.names_pollutant then 0.9 else 0.6 end::real as score,
                format('%s %s in %s-%s (%s to %s) vs SMARTS violation %s (%s, %s)',
                       e.source, p.name, e.reporting_year, e.reporting_year + 1,
                       e.first_date, e.last_date, v.violation_id, v.violation_type,
                       v.occurrence_date) as reason
         from violation_event e
         join pollutant p on p.key = e.pollutant_key
         join facility_link l on l.facility_id = e.facility_id and l.status = 'linked'
                             and l.source in ('smarts_industrial', 'smarts_construction')
         join smarts_violation v on coalesce(v.app_id, '') || '|' || coalesce(v.wdid, '') = l.source_key
                                and v.withdrawn_run_id is null
         -- The pollutant is named by its base name ('Copper' of 'Copper, Total') or by its
         -- abbreviation ('TSS' of 'Total Suspended Solids (TSS)').
         cross join lateral (
             select coalesce(v.description, '') || ' ' || coalesce(v.violation_type, '') as text,
                    btrim(regexp_replace(p.name, '\s*\(.*\)|,.*$', '', 'g')) as base,
                    substring(p.name from '\(([^)]*)\)') as abbr) n
         cross join lateral (
             select n.text ilike '%' || n.base || '%'
                    or (n.abbr is not null and n.text ~* ('\m' || n.abbr || '\M')) as names_pollutant) t
         where e.retracted_at is null
           and v.occurrence_date between e.first_date - 30 and e.last_date + 30
           and (t.names_pollutant
                or v.violation_type ilike any (array['%effluent%', '%NAL%', '%exceed%',
                                                     '%numeric%', '%monitoring%']))",
    )
    .execute(&mut **tx)
    .await?;
    // Runtime SQL: eng_dup is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "delete from violation_duplicate d
         where not exists (select 1 from eng_dup n where n.event_id = d.event_id
                                                    and n.smarts_violation_id = d.smarts_violation_id)",
    )
    .execute(&mut **tx)
    .await?;
    // Runtime SQL: eng_dup is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "insert into violation_duplicate (facility_id, event_id, smarts_violation_id, score, reason)
         select facility_id, event_id, smarts_violation_id, score, reason from eng_dup
         on conflict (event_id, smarts_violation_id) do update
            set score = excluded.score, reason = excluded.reason, facility_id = excluded.facility_id",
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar!(r#"select count(*) as "n!" from violation_duplicate"#)
        .fetch_one(&mut **tx)
        .await
}
