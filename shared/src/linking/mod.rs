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

pub mod cluster;
pub mod score;

use cluster::{Constraints, Edge, Method};
pub use score::Settings;
use score::{Agreement, Features};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Name-only candidates kept per record (see `score_candidates`).
const NAME_CANDIDATES: i64 = 10;

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
    let changed_records = load_records(&mut tx, watermark).await?;
    mark("load");
    let pairs_scored = score_candidates(&mut tx, &opts.settings, full).await?;
    mark("score");
    let pairs_stored: i64 = sqlx::query_scalar!(r#"select count(*) as "v!" from facility_match"#)
        .fetch_one(&mut *tx)
        .await?;
    let plan = plan(&mut tx, &opts.settings).await?;
    mark("cluster");
    let written = write(&mut tx, &plan.rows).await?;
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
    summarize(&mut tx, &opts.settings, &mut report).await?;
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

/// `lk_rec`: every source record with its facility's match features; `changed` marks records
/// whose facility changed after `watermark` (all when `None`). Returns the changed count.
async fn load_records(
    tx: &mut Transaction<'_, Postgres>,
    watermark: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<i64, sqlx::Error> {
    let statements = [
        // Each record by its own values (`own_*`, not the facility's served fields, which
        // follow the records linked to it). Placeholder names ('WDID …' for a site known only
        // from monitoring rows) carry no name to match.
        "create temp table lk_rec on commit drop as
         select f.id as fid, f.origin_source as source, f.origin_key as key,
                case when f.origin_source <> 'esmr'
                     then nullif(upper(btrim(split_part(f.origin_key, '|', 2))), '') end as wdid,
                case when f.origin_source <> 'esmr'
                     then nullif(btrim(split_part(f.origin_key, '|', 1)), '') end as app_id,
                case when f.own_name !~ '^(WDID|APP_ID|CIWQS place) '
                     then nullif(f.match_name, '') end as match_name,
                f.street_key, f.own_city as city, f.own_county as county, f.own_region as region,
                f.own_latitude as latitude, f.own_longitude as longitude,
                ($1::timestamptz is null or f.updated_at > $1) as changed
         from facility f
         where f.origin_source is not null",
        "create index on lk_rec (latitude, longitude)",
        "create index on lk_rec using gin (match_name gin_trgm_ops)",
        "create index on lk_rec (wdid)",
        "create index on lk_rec (app_id)",
        "create index on lk_rec (street_key)",
        "create unique index on lk_rec (source, key)",
        "analyze lk_rec",
        // Records neither coordinates nor a street address can place: the only ones matched
        // on the name alone (a SMARTS record with an address meets its site by street).
        "create temp table lk_nocoord on commit drop as
         select * from lk_rec
         where latitude is null and match_name is not null and street_key is null",
        "create index on lk_nocoord using gin (match_name gin_trgm_ops)",
        "analyze lk_nocoord",
    ];
    for (i, sql) in statements.into_iter().enumerate() {
        let q = sqlx::query(sql);
        let q = if i == 0 { q.bind(watermark) } else { q };
        q.execute(&mut **tx).await?;
    }
    // Runtime SQL: lk_rec is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query_scalar("select count(*) from lk_rec where changed")
        .fetch_one(&mut **tx)
        .await
}

#[derive(sqlx::FromRow)]
struct Candidate {
    a_source: String,
    a_key: String,
    b_source: String,
    b_key: String,
    exact: Option<String>,
    similarity: Option<f32>,
    a_lat: Option<f64>,
    a_lon: Option<f64>,
    b_lat: Option<f64>,
    b_lon: Option<f64>,
    a_street: Option<String>,
    b_street: Option<String>,
    a_city: Option<String>,
    b_city: Option<String>,
    a_county: Option<String>,
    b_county: Option<String>,
    a_region: Option<String>,
    b_region: Option<String>,
}

/// Scores the candidate pairs touching changed records (all when `full`) into `facility_match`.
async fn score_candidates(
    tx: &mut Transaction<'_, Postgres>,
    s: &Settings,
    full: bool,
) -> Result<i64, sqlx::Error> {
    // Degrees spanning the radius: latitude everywhere, longitude at California's north end.
    let dlat = s.radius_m / 111_000.0;
    let dlon = s.radius_m / (111_000.0 * 42.1f64.to_radians().cos());
    // A name-only candidate reaches the floor only with name similarity of at least
    // (floor - 0.15) / 0.6 (0.15: the same city, the most a record without coordinates or
    // street address can add).
    let name_threshold = ((f64::from(s.floor) - 0.15) / 0.6).clamp(0.1, 1.0);
    sqlx::query!(
        "select set_config('pg_trgm.similarity_threshold', $1, true)",
        format!("{name_threshold:.3}")
    )
    .fetch_one(&mut **tx)
    .await?;
    // Runtime SQL: lk_nocoord, lk_rec are temporary tables of this transaction, which the build-time check cannot see.
    let rows: Vec<Candidate> = sqlx::query_as::<_, Candidate>(
        "with pairs as (
             select a.source as s1, a.key as k1, b.source as s2, b.key as k2,
                    'same WDID ' || a.wdid as exact
               from lk_rec a join lk_rec b on b.wdid = a.wdid and b.source = a.source
              where a.changed and a.source <> 'esmr' and b.key <> a.key
             union all
             select a.source, a.key, b.source, b.key, 'same APP_ID ' || a.app_id
               from lk_rec a join lk_rec b on b.app_id = a.app_id and b.source = a.source
              where a.changed and a.source <> 'esmr' and b.key <> a.key
             union all
             select a.source, a.key, b.source, b.key, null
               from lk_rec a join lk_rec b
                 on b.latitude between a.latitude - $1 and a.latitude + $1
                and b.longitude between a.longitude - $2 and a.longitude + $2
              where a.changed and a.match_name is not null and b.match_name is not null
                and (b.source, b.key) <> (a.source, a.key)
             union all
             select a.source, a.key, b.source, b.key, null
               from lk_rec a join lk_rec b on b.street_key = a.street_key
              where a.changed and a.match_name is not null and b.match_name is not null
                and (b.source, b.key) <> (a.source, a.key)
             union all
             -- Similar names when one side cannot be placed (lk_nocoord): from that side
             -- (few records, so few index probes), and in an incremental run also from
             -- changed records with coordinates to unchanged ones without. At most the
             -- NAME_CANDIDATES most similar per record: a name shared more widely is a chain,
             -- which a name alone cannot place anyway.
             select a.source, a.key, b.source, b.key, null
               from lk_nocoord a
               cross join lateral (
                   select b.source, b.key from lk_rec b
                    where b.match_name % a.match_name
                      and (a.region is null or b.region is null or a.region = b.region)
                      and (b.source, b.key) <> (a.source, a.key)
                    order by similarity(b.match_name, a.match_name) desc, b.source, b.key
                    limit $4) b
              where a.changed
             union all
             select a.source, a.key, b.source, b.key, null
               from lk_rec a
               cross join lateral (
                   select b.source, b.key from lk_nocoord b
                    where b.match_name % a.match_name
                      and (a.region is null or b.region is null or a.region = b.region)
                    order by similarity(b.match_name, a.match_name) desc, b.source, b.key
                    limit $4) b
              where $3 and a.changed and a.latitude is not null and a.match_name is not null
         ), ordered as (
             select distinct on (s1, k1, s2, k2) s1, k1, s2, k2, exact
             from (select case when (s1, k1) < (s2, k2) then s1 else s2 end as s1,
                          case when (s1, k1) < (s2, k2) then k1 else k2 end as k1,
                          case when (s1, k1) < (s2, k2) then s2 else s1 end as s2,
                          case when (s1, k1) < (s2, k2) then k2 else k1 end as k2,
                          exact
                     from pairs) p
             order by s1, k1, s2, k2, exact nulls last
         )
         select o.s1 as a_source, o.k1 as a_key, o.s2 as b_source, o.k2 as b_key, o.exact,
                similarity(a.match_name, b.match_name) as similarity,
                a.latitude as a_lat, a.longitude as a_lon, b.latitude as b_lat, b.longitude as b_lon,
                a.street_key as a_street, b.street_key as b_street, a.city as a_city,
                b.city as b_city, a.county as a_county, b.county as b_county,
                a.region as a_region, b.region as b_region
         from ordered o
         join lk_rec a on a.source = o.s1 and a.key = o.k1
         join lk_rec b on b.source = o.s2 and b.key = o.k2",
    )
    .bind(dlat)
    .bind(dlon)
    .bind(!full)
    .bind(NAME_CANDIDATES)
    .fetch_all(&mut **tx)
    .await?;

    let mut cols: [Vec<String>; 6] = Default::default();
    let (mut conf, mut sim, mut dist) = (Vec::new(), Vec::new(), Vec::new());
    let mut methods = Vec::new();
    for c in &rows {
        let (method, confidence, similarity, distance, reason) = match &c.exact {
            Some(why) => ("exact", 1.0f32, c.similarity, None, why.clone()),
            None => {
                let distance_m = match (c.a_lat, c.a_lon, c.b_lat, c.b_lon) {
                    (Some(a1), Some(a2), Some(b1), Some(b2)) => {
                        Some(score::haversine_m(a1, a2, b1, b2))
                    }
                    _ => None,
                };
                let f = Features {
                    name_similarity: c.similarity.unwrap_or(0.0),
                    distance_m,
                    street: Agreement::of(c.a_street.as_deref(), c.b_street.as_deref()),
                    city: Agreement::of(c.a_city.as_deref(), c.b_city.as_deref()),
                    county: Agreement::of(c.a_county.as_deref(), c.b_county.as_deref()),
                    region: Agreement::of(c.a_region.as_deref(), c.b_region.as_deref()),
                };
                let scored = score::score(&f, s);
                if scored.confidence < s.floor {
                    continue;
                }
                (
                    "fuzzy",
                    scored.confidence,
                    c.similarity,
                    distance_m,
                    scored.reason,
                )
            }
        };
        for (col, v) in cols.iter_mut().zip([
            &c.a_source,
            &c.a_key,
            &c.b_source,
            &c.b_key,
            &method.to_owned(),
            &reason,
        ]) {
            col.push(v.clone());
        }
        methods.push(method);
        conf.push(confidence);
        sim.push(similarity);
        dist.push(distance);
    }
    if full {
        sqlx::query!("delete from facility_match")
            .execute(&mut **tx)
            .await?;
    } else {
        // Runtime SQL: lk_rec is a temporary table of this transaction, which the build-time check cannot see.
        sqlx::query(
            "delete from facility_match m using lk_rec r
             where r.changed and ((m.a_source, m.a_key) = (r.source, r.key)
                                  or (m.b_source, m.b_key) = (r.source, r.key))",
        )
        .execute(&mut **tx)
        .await?;
    }
    let [a_source, a_key, b_source, b_key, method, reason] = cols;
    sqlx::query!(
        "insert into facility_match (a_source, a_key, b_source, b_key, method, confidence,
                                     name_similarity, distance_m, reason)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::real[], $7::real[], $8::float8[], $9::text[])",
        &a_source,
        &a_key,
        &b_source,
        &b_key,
        &method,
        &conf,
        &sim as _,
        &dist as _,
        &reason
    )
    .execute(&mut **tx)
    .await?;
    Ok(rows.len() as i64)
}

/// A wanted `facility_link` row.
#[derive(Debug, Clone)]
struct Want {
    source: String,
    key: String,
    facility_id: i64,
    method: &'static str,
    confidence: f32,
    status: &'static str,
    verified_by: Option<String>,
    verified_at: Option<chrono::DateTime<chrono::Utc>>,
    notes: Option<String>,
}

impl Want {
    fn rank(&self) -> (u8, i64) {
        let status = match self.status {
            "linked" => 3,
            "rejected" => 2,
            _ => 1,
        };
        (status, (self.confidence * 1000.0) as i64)
    }
}

struct Plan {
    rows: Vec<Want>,
    ambiguous: usize,
    blocked: usize,
}

#[derive(sqlx::FromRow)]
struct Decision {
    source: String,
    source_key: String,
    facility_id: Option<i64>,
    decision: String,
    decided_by: String,
    decided_at: chrono::DateTime<chrono::Utc>,
    notes: Option<String>,
    origin_source: Option<String>,
    origin_key: Option<String>,
}

/// Interns `(source, key)` pairs as indices.
#[derive(Default)]
struct Records {
    index: HashMap<(String, String), usize>,
    keys: Vec<(String, String)>,
}

impl Records {
    fn id(&mut self, source: &str, key: &str) -> usize {
        let k = (source.to_owned(), key.to_owned());
        if let Some(&i) = self.index.get(&k) {
            return i;
        }
        self.keys.push(k.clone());
        self.index.insert(k, self.keys.len() - 1);
        self.keys.len() - 1
    }
}

/// Groups the records and says which `facility_link` rows should exist for every record in
/// scope: those in a stored pair or a decision, and those whose current rows are not the plain
/// seed link.
async fn plan(tx: &mut Transaction<'_, Postgres>, s: &Settings) -> Result<Plan, sqlx::Error> {
    let mut recs = Records::default();
    let mut edges = Vec::new();
    let mut reasons = Vec::new();
    let matches = sqlx::query!(
        "select a_source, a_key, b_source, b_key, method, confidence, reason from facility_match",
    )
    .fetch_all(&mut **tx)
    .await?;
    for m in matches {
        let (a_source, a_key, b_source, b_key, method, confidence, reason) = (
            m.a_source,
            m.a_key,
            m.b_source,
            m.b_key,
            m.method,
            m.confidence,
            m.reason,
        );
        let (a, b) = (recs.id(&a_source, &a_key), recs.id(&b_source, &b_key));
        let method = if method == "exact" {
            Method::Exact
        } else {
            Method::Fuzzy
        };
        // Industrial and construction records of one place are different permits (a project
        // building what later becomes an industrial site): proposed, never automatic.
        let cross_program = a_source != b_source && a_source != "esmr" && b_source != "esmr";
        let accepted = method == Method::Exact || (confidence >= s.threshold && !cross_program);
        edges.push(Edge {
            a,
            b,
            method,
            confidence,
            accepted,
        });
        reasons.push(reason);
    }
    let decisions: Vec<Decision> = sqlx::query_as!(
        Decision,
        "select d.source, d.source_key, d.facility_id, d.decision, d.decided_by, d.decided_at,
                d.notes, f.origin_source, f.origin_key
         from facility_link_decision d left join facility f on f.id = d.facility_id
         order by d.id"
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut constraints = Constraints::default();
    let mut decided: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, d) in decisions.iter().enumerate() {
        let r = recs.id(&d.source, &d.source_key);
        decided.entry(r).or_default().push(i);
        let target = match (&d.origin_source, &d.origin_key) {
            (Some(src), Some(key)) => Some(recs.id(src, key)),
            _ => None,
        };
        match (d.decision.as_str(), target) {
            ("link", Some(t)) => {
                edges.push(Edge {
                    a: r,
                    b: t,
                    method: Method::Manual,
                    confidence: 1.0,
                    accepted: true,
                });
                reasons.push(format!("manual link by {}", d.decided_by));
            }
            ("unlink", Some(t)) => constraints.cannot.push((r, t)),
            ("unlink", None) if d.facility_id.is_none() => {
                constraints.isolated.insert(r);
            }
            _ => tracing::warn!(
                source = d.source,
                key = d.source_key,
                "decision names a facility without a source record; ignored"
            ),
        }
    }
    // Records whose current rows are more than their plain seed link must be rewritten too.
    let current = sqlx::query!(
        "select distinct l.source, l.source_key
         from facility_link l
         left join facility f on f.origin_source = l.source and f.origin_key = l.source_key
         where l.method <> 'seed' or l.status <> 'linked' or f.id is distinct from l.facility_id",
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in &current {
        recs.id(&r.source, &r.source_key);
    }
    let fids: HashMap<(String, String), i64> = {
        let (sources, keys): (Vec<String>, Vec<String>) = recs.keys.iter().cloned().unzip();
        // Runtime SQL: lk_rec is a temporary table of this transaction, which the build-time check cannot see.
        sqlx::query_as::<_, (String, String, i64)>(
            "select r.source, r.key, r.fid from lk_rec r
             join unnest($1::text[], $2::text[]) as x(source, key)
               on x.source = r.source and x.key = r.key",
        )
        .bind(&sources)
        .bind(&keys)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(s, k, f)| ((s, k), f))
        .collect()
    };
    let n = recs.keys.len();
    let clusters = cluster::cluster(n, &mut edges, &constraints);
    let fid = |r: usize| fids.get(&recs.keys[r]).copied();
    // The canonical facility of a group: built from a SMARTS record when there is one (it has
    // the address, county and operator eSMR lacks), industrial first; then the oldest.
    let rank = |r: usize| match recs.keys[r].0.as_str() {
        "smarts_industrial" => 0,
        "smarts_construction" => 1,
        _ => 2,
    };
    let mut best: HashMap<usize, (u8, i64)> = HashMap::new();
    for r in 0..n {
        if let Some(f) = fid(r) {
            let c = best.entry(clusters.group[r]).or_insert((rank(r), f));
            *c = (*c).min((rank(r), f));
        }
    }
    let canonical: HashMap<usize, i64> = best.into_iter().map(|(g, (_, f))| (g, f)).collect();
    let mut size: HashMap<usize, usize> = HashMap::new();
    for g in &clusters.group {
        *size.entry(*g).or_default() += 1;
    }

    let mut want: HashMap<(usize, i64), Want> = HashMap::new();
    let mut push = |r: usize, w: Want| {
        let k = (r, w.facility_id);
        if want.get(&k).is_none_or(|old| old.rank() < w.rank()) {
            want.insert(k, w);
        }
    };
    let base = |r: usize, facility_id: i64| Want {
        source: recs.keys[r].0.clone(),
        key: recs.keys[r].1.clone(),
        facility_id,
        method: "seed",
        confidence: 1.0,
        status: "linked",
        verified_by: None,
        verified_at: None,
        notes: None,
    };
    let decision_of = |r: usize, kind: &str, facility: Option<i64>| {
        decided.get(&r).and_then(|ds| {
            ds.iter()
                .map(|&i| &decisions[i])
                .find(|d| d.decision == kind && (facility.is_none() || d.facility_id == facility))
        })
    };
    for r in 0..n {
        let Some(own) = fid(r) else { continue };
        let g = clusters.group[r];
        let target = canonical[&g];
        let mut w = base(r, target);
        if size[&g] > 1 && own != target {
            let i = clusters.joined_by[&r];
            let e = &edges[i];
            w.method = e.method.as_str();
            w.confidence = e.confidence;
            w.notes = Some(reasons[i].clone());
            if e.method == Method::Manual {
                let other = if e.a == r { e.b } else { e.a };
                let d = decision_of(r, "link", None).or_else(|| decision_of(other, "link", None));
                if let Some(d) = d {
                    w.verified_by = Some(d.decided_by.clone());
                    w.verified_at = Some(d.decided_at);
                    w.notes = d.notes.clone().or(w.notes);
                }
            }
        } else if size[&g] > 1 {
            w.notes = Some(format!(
                "canonical record of a site with {} records",
                size[&g]
            ));
        } else if let Some(d) = decision_of(r, "unlink", None) {
            w.method = "unlinked";
            w.verified_by = Some(d.decided_by.clone());
            w.verified_at = Some(d.decided_at);
            w.notes = d.notes.clone();
        }
        push(r, w);
        // Rejections the reviewers made, on the facility they named.
        for d in decided
            .get(&r)
            .into_iter()
            .flatten()
            .map(|&i| &decisions[i])
        {
            if let ("unlink", Some(f)) = (d.decision.as_str(), d.facility_id)
                && f != target
            {
                let mut w = base(r, f);
                w.method = "manual";
                w.status = "rejected";
                w.verified_by = Some(d.decided_by.clone());
                w.verified_at = Some(d.decided_at);
                w.notes = d.notes.clone();
                push(r, w);
            }
        }
    }
    // Proposals: candidates at or above the floor that did not end up in one group.
    let forbidden: std::collections::HashSet<(usize, usize)> = constraints
        .cannot
        .iter()
        .flat_map(|&(a, b)| [(a, b), (b, a)])
        .collect();
    for (i, e) in edges.iter().enumerate() {
        if e.method == Method::Manual || clusters.internal(e) || e.confidence < s.floor {
            continue;
        }
        for (x, y) in [(e.a, e.b), (e.b, e.a)] {
            if constraints.isolated.contains(&x) || forbidden.contains(&(x, y)) {
                continue;
            }
            let Some(&target) = canonical.get(&clusters.group[y]) else {
                continue;
            };
            let mut w = base(x, target);
            w.method = e.method.as_str();
            w.confidence = e.confidence;
            w.status = "proposed";
            w.notes = Some(
                if clusters.ambiguous.contains(&x) || clusters.ambiguous.contains(&y) {
                    format!("{} (ambiguous: matches several sites)", reasons[i])
                } else if clusters.blocked.contains(&i) {
                    format!("{} (a manual decision keeps them apart)", reasons[i])
                } else {
                    reasons[i].clone()
                },
            );
            push(x, w);
        }
    }
    Ok(Plan {
        rows: want.into_values().collect(),
        ambiguous: clusters.ambiguous.len(),
        blocked: clusters.blocked.len(),
    })
}

/// Makes `facility_link` say what `rows` say for the records they cover; sets `merged_into`
/// and fills `lk_relinked` (queued in `facility_relink`).
async fn write(tx: &mut Transaction<'_, Postgres>, rows: &[Want]) -> Result<Written, sqlx::Error> {
    // Runtime SQL: lk_want is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "create temp table lk_want (source text, source_key text, facility_id bigint,
             method text, confidence real, status text, verified_by text,
             verified_at timestamptz, notes text) on commit drop",
    )
    .execute(&mut **tx)
    .await?;
    let col = |f: fn(&Want) -> String| rows.iter().map(f).collect::<Vec<_>>();
    // Runtime SQL: lk_want is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "insert into lk_want
         select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::real[],
                              $6::text[], $7::text[], $8::timestamptz[], $9::text[])",
    )
    .bind(col(|w| w.source.clone()))
    .bind(col(|w| w.key.clone()))
    .bind(rows.iter().map(|w| w.facility_id).collect::<Vec<_>>())
    .bind(col(|w| w.method.to_owned()))
    .bind(rows.iter().map(|w| w.confidence).collect::<Vec<_>>())
    .bind(col(|w| w.status.to_owned()))
    .bind(
        rows.iter()
            .map(|w| w.verified_by.clone())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|w| w.verified_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|w| w.notes.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    let statements = [
        "create temp table lk_relinked (facility_id bigint primary key) on commit drop",
        "create temp table lk_scope on commit drop as select distinct source, source_key from lk_want",
        "create index on lk_want (source, source_key, facility_id)",
        "analyze lk_want",
    ];
    for sql in statements {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    // Each change counts its rows and queues the facilities whose linked records changed.
    let deleted = changed(
        tx,
        "delete from facility_link l using lk_scope s
         where l.source = s.source and l.source_key = s.source_key
           and not exists (select 1 from lk_want w where w.source = l.source
                             and w.source_key = l.source_key and w.facility_id = l.facility_id)
         returning l.facility_id, l.status = 'linked' as moved",
    )
    .await?;
    let updated = changed(
        tx,
        "update facility_link l
            set method = w.method, confidence = w.confidence, status = w.status,
                verified_by = w.verified_by, verified_at = w.verified_at, notes = w.notes
           from lk_want w, facility_link o
          where w.source = l.source and w.source_key = l.source_key
            and w.facility_id = l.facility_id and o.id = l.id
            and (l.method, l.confidence, l.status, l.verified_by, l.verified_at, l.notes)
                is distinct from
                (w.method, w.confidence, w.status, w.verified_by, w.verified_at, w.notes)
         returning l.facility_id, (o.status = 'linked') <> (w.status = 'linked') as moved",
    )
    .await?;
    let inserted = changed(
        tx,
        "insert into facility_link (facility_id, source, source_key, method, confidence,
                                    status, verified_by, verified_at, notes)
         select w.facility_id, w.source, w.source_key, w.method, w.confidence, w.status,
                w.verified_by, w.verified_at, w.notes
         from lk_want w
         where not exists (select 1 from facility_link l where l.source = w.source
                             and l.source_key = w.source_key and l.facility_id = w.facility_id)
         returning facility_id, status = 'linked' as moved",
    )
    .await?;
    let statements = [
        "update facility f
            set merged_into = case when l.facility_id = f.id then null else l.facility_id end
           from facility_link l, lk_scope s
          where s.source = l.source and s.source_key = l.source_key and l.status = 'linked'
            and f.origin_source = l.source and f.origin_key = l.source_key
            and f.merged_into is distinct from
                (case when l.facility_id = f.id then null else l.facility_id end)",
        "insert into facility_relink (facility_id) select facility_id from lk_relinked
         on conflict do nothing",
    ];
    for sql in statements {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(Written {
        inserted,
        updated,
        deleted,
    })
}

/// Runs `dml` (returning `facility_id` and `moved`), queues the facilities of moved rows in
/// `lk_relinked` and returns how many rows changed.
async fn changed(tx: &mut Transaction<'_, Postgres>, dml: &str) -> Result<i64, sqlx::Error> {
    // Runtime SQL: wraps the caller's DML statement, and lk_relinked is a temporary table of this transaction.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "with c as ({dml}), q as (
             insert into lk_relinked select distinct facility_id from c where moved
             on conflict do nothing)
         select count(*) from c"
    )))
    .fetch_one(&mut **tx)
    .await
}

/// Fills the current counts by method and confidence band.
async fn summarize(
    tx: &mut Transaction<'_, Postgres>,
    s: &Settings,
    report: &mut Report,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query!(
        r#"select status, method,
                case when confidence >= 1 then '1.00'
                     when confidence >= 0.95 then '0.95-0.99'
                     when confidence >= $1 then 'threshold-0.94'
                     else 'floor-threshold' end as "band!",
                count(*) as "n!"
         from facility_link where status <> 'rejected' group by 1, 2, 3"#,
        s.threshold
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let (status, method, band, n) = (r.status, r.method, r.band, r.n);
        if status == "proposed" {
            report.proposed += n;
            continue;
        }
        *report.linked_by_method.entry(method.clone()).or_default() += n;
        *report
            .by_method_and_band
            .entry(method)
            .or_default()
            .entry(band)
            .or_default() += n;
    }
    report.merged_facilities = sqlx::query_scalar!(
        r#"select count(*) as "v!" from facility where merged_into is not null"#
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(())
}
