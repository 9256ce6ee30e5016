//! `GET /api/violations` and `GET /api/violations/stats`: one feed of both kinds of violation,
//! `kind=computed` (exceedance events this service computes from the monitoring results of
//! eSMR and both SMARTS programs) and `kind=regulatory` (violations SMARTS records, as published:
//! type, serious, priority, status, with their inspection and enforcement links); `kind=all`
//! by default.
//!
//! Filters: `kind`, `source` (`esmr`, `smarts_industrial`, `smarts_construction`, `smarts` for
//! both SMARTS programs), `facilityId`, `county`, `region`, `status`, `year` (reporting year,
//! July–June), `dateFrom` / `dateTo` (ISO; items whose dates overlap the range),
//! `includeResolved` (`false` leaves out reviewed events: resolved or dismissed, and dismissed
//! regulatory violations). Filters on what only one kind has (`pollutant`, `type`, `severity`,
//! `screening`, `monitoringLocation` of computed events; `violationType`, `serious` of
//! regulatory ones) leave out the other kind. A regulatory violation is placed by its own
//! published county and regional board and belongs to the canonical facility linked to its
//! APP_ID|WDID. Retracted events and withdrawn rows are never listed. Newest first; opaque cursor; `limit` ≤ 1000; `format=csv`.

use super::list::{self, Arg, Conditions, HOT};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

pub(crate) const KINDS: &[&str] = &["all", "computed", "regulatory"];
pub(crate) const SOURCES: &[&str] = &[
    "all",
    "esmr",
    "smarts",
    "smarts_industrial",
    "smarts_construction",
];
pub(crate) const TYPES: &[&str] = &[
    "NAL_ANNUAL",
    "NAL_INSTANT",
    "CMC",
    "CCC",
    "MCL",
    "ACTION_LEVEL",
    "SECONDARY_MCL",
];
pub(crate) const SEVERITIES: &[&str] = &["low", "moderate", "high", "critical"];
/// Review statuses of computed events, and the SMARTS statuses of regulatory violations
/// (`Violation`, `Potential`, `Dismissed`, lowercased; `dismissed` matches both kinds).
pub(crate) const STATUSES: &[&str] = &[
    "open",
    "under_review",
    "resolved",
    "dismissed",
    "violation",
    "potential",
];

/// Sorts of the feed: the newest first by default (an event's last sample, a regulatory
/// violation's occurrence date, or its discovery date when that is missing).
pub(crate) static SORTS: list::Sorts = list::Sorts {
    fields: &[
        list::SortField::nullable("lastDate", "v.last_date", "date"),
        list::SortField::nullable("firstDate", "v.first_date", "date"),
        list::SortField::nullable("detectedAt", "v.detected_at", "timestamptz"),
        list::SortField::nullable("maxRatio", "v.max_ratio", "numeric"),
        list::SortField::required("id", "v.uid", "bigint"),
    ],
    default: "-lastDate",
};

/// One kind of item: the columns filters, sorts and stats read (the same in both kinds), the
/// item, and where they come from.
struct Leg {
    columns: &'static str,
    item: &'static str,
    from: &'static str,
}

/// Computed exceedance events (retracted ones are never listed).
const COMPUTED: Leg = Leg {
    columns: "e.id as uid, 'computed'::text as kind, e.source, e.facility_id, f.county, f.region,
         e.pollutant_key, e.benchmark_type, e.severity, e.status, e.reporting_year,
         e.first_date, e.last_date, e.detected_at, e.max_ratio, e.screening, e.unverified,
         null::text as violation_type, null::boolean as serious",
    item: "jsonb_build_object(
         'id', e.id, 'kind', 'computed', 'facilityId', e.facility_id, 'facilityName', f.name,
         'county', f.county, 'region', f.region, 'source', e.source,
         'pollutant', e.pollutant_key, 'reportingYear', e.reporting_year,
         'benchmarkType', e.benchmark_type, 'measure', e.measure, 'value', e.value,
         'unit', e.unit, 'maxRatio', e.max_ratio, 'severity', e.severity,
         'sampleCount', e.sample_count, 'firstDate', e.first_date, 'lastDate', e.last_date,
         'screening', e.screening, 'unverified', e.unverified, 'ndPolicy', e.nd_policy,
         'status', e.status, 'detectedAt', e.detected_at,
         'links', jsonb_build_object('self', '/api/violations/' || e.id,
             'facility', '/api/facilities/' || e.facility_id || '/complete'))",
    from: "violation_event e join facility f on f.id = e.facility_id
         where e.retracted_at is null",
};

/// Regulatory violations: current SMARTS rows, keyed after every event id (id + 2^62), dated
/// by occurrence (by discovery when that is missing: the expressions the feed index carries),
/// of the program of the record linked to their APP_ID|WDID (an unlinked row's by its
/// published permit type).
const REGULATORY: Leg = Leg {
    columns: "t.id + 4611686018427387904 as uid, 'regulatory'::text as kind,
         coalesce(k.source, case when t.permit_type ~* 'construction|linear|lup'
                                 then 'smarts_construction' else 'smarts_industrial' end) as source,
         k.facility_id, t.place_county as county, t.regional_board as region,
         null::text as pollutant_key, null::text as benchmark_type, null::text as severity,
         lower(t.violation_status) as status, extract(year from coalesce(t.occurrence_date, t.discovery_date) - interval '6 months')::integer as reporting_year,
         coalesce(t.occurrence_date, t.discovery_date) as first_date, coalesce(t.occurrence_date, t.discovery_date) as last_date,
         null::timestamptz as detected_at, null::numeric as max_ratio,
         null::boolean as screening, null::boolean as unverified,
         t.violation_type, t.serious_violation as serious",
    item: "jsonb_build_object(
         'id', t.id, 'kind', 'regulatory', 'facilityId', k.facility_id,
         'facilityName', rf.name, 'county', t.place_county, 'region', t.regional_board,
         'source', coalesce(k.source, case when t.permit_type ~* 'construction|linear|lup'
                                 then 'smarts_construction' else 'smarts_industrial' end),
         'violationId', t.violation_id, 'wdid', t.wdid, 'appId', t.app_id,
         'type', t.violation_type, 'seriousViolation', t.serious_violation,
         'priority', t.violation_priority, 'status', t.violation_status,
         'description', t.description, 'violationSource', t.violation_source,
         'occurrenceDate', t.occurrence_date, 'discoveryDate', t.discovery_date,
         'firstDate', coalesce(t.occurrence_date, t.discovery_date), 'lastDate', coalesce(t.occurrence_date, t.discovery_date), 'reportingYear', extract(year from coalesce(t.occurrence_date, t.discovery_date) - interval '6 months')::integer,
         'linkedEnforcement', t.linked_enforcement_action,
         'links', jsonb_build_object(
             'record', '/api/smarts/violations?violationId=' || t.violation_id,
             'facility', '/api/facilities/' || k.facility_id || '/complete',
             'inspections', coalesce((select jsonb_agg('/api/smarts/inspections?inspectionId='
                                || iv.inspection_id order by iv.inspection_id)
                              from smarts_inspection_violation iv
                             where iv.violation_id = t.violation_id), '[]'),
             'enforcement', coalesce((select jsonb_agg('/api/smarts/enforcement?enforcementId='
                                || ev.enforcement_id order by ev.enforcement_id)
                              from smarts_enforcement_violation ev
                             where ev.violation_id = t.violation_id), '[]')),
         'provenance', jsonb_build_object('dataset', 'smarts_violations',
             'sourceLine', t.source_line, 'changedInRun', t.changed_run_id))",
    from: "smarts_violation t
         left join lateral (
           select l.facility_id, l.source from facility_link l
            where l.status = 'linked' and l.source in ('smarts_industrial', 'smarts_construction')
              and l.source_key = coalesce(t.app_id, '') || '|' || coalesce(t.wdid, '')
            order by l.source desc limit 1) k on true
         left join facility rf on rf.id = k.facility_id
         where t.withdrawn_run_id is null",
};

/// The relations the feed is read from, each aliased `v` (conditions, sorts and stats name
/// `v.…`): both kinds as one union without the item (what counts and stats read), and each
/// kind on its own with its item (what a page reads, one index-ordered branch per kind).
struct Feed {
    union: String,
    /// `union` without the computed events' facility join (their `county` and `region` are
    /// null): what a count or stats without an area filter read.
    union_without_area: String,
    branches: [String; 2],
}

/// The computed events' columns without their facility's place (no join needed).
const COMPUTED_WITHOUT_AREA: Leg = Leg {
    columns: "e.id as uid, 'computed'::text as kind, e.source, e.facility_id,
         null::text as county, null::text as region,
         e.pollutant_key, e.benchmark_type, e.severity, e.status, e.reporting_year,
         e.first_date, e.last_date, e.detected_at, e.max_ratio, e.screening, e.unverified,
         null::text as violation_type, null::boolean as serious",
    item: "null",
    from: "violation_event e where e.retracted_at is null",
};

impl Feed {
    /// The union a count or stats of `f` reads.
    fn counted(&self, f: &Filter) -> &str {
        if f.county.is_none() && f.region.is_none() {
            &self.union_without_area
        } else {
            &self.union
        }
    }
}

fn feed() -> &'static Feed {
    static FEED: std::sync::LazyLock<Feed> = std::sync::LazyLock::new(|| {
        let branch = |l: &Leg| {
            format!(
                "(select {}, {} as item from {}) v",
                l.columns, l.item, l.from
            )
        };
        let union = |computed: &Leg| {
            format!(
                "(select {} from {} union all select {} from {}) v",
                computed.columns, computed.from, REGULATORY.columns, REGULATORY.from
            )
        };
        Feed {
            union: union(&COMPUTED),
            union_without_area: union(&COMPUTED_WITHOUT_AREA),
            branches: [branch(&COMPUTED), branch(&REGULATORY)],
        }
    });
    &FEED
}

/// The validated filters.
#[derive(Default)]
struct Filter {
    kind: Option<&'static str>,
    sources: Vec<&'static str>,
    facility_id: Option<i64>,
    county: Option<String>,
    region: Option<String>,
    pollutant: Option<String>,
    benchmark_type: Option<&'static str>,
    severity: Option<&'static str>,
    status: Option<&'static str>,
    year: Option<i64>,
    date_from: Option<chrono::NaiveDate>,
    date_to: Option<chrono::NaiveDate>,
    screening: Option<bool>,
    include_resolved: bool,
    violation_type: Option<String>,
    serious: Option<bool>,
    monitoring_location: Option<String>,
}

impl Filter {
    /// Only the filters given become SQL, so every query is planned for its own filters.
    fn conditions(&self) -> Conditions {
        let text = |v: Option<&str>| v.map(|s| Arg::Text(s.to_owned()));
        let mut c = Conditions::default();
        c.when("v.kind = ", text(self.kind), "")
            .when(
                "v.source = any(",
                (self.sources.len() < 3)
                    .then(|| Arg::Texts(self.sources.iter().map(|s| (*s).to_owned()).collect())),
                ")",
            )
            .when("v.facility_id = ", self.facility_id.map(Arg::Int), "")
            .when(
                "lower(v.county) = lower(",
                text(self.county.as_deref()),
                ")",
            )
            .when(
                "upper(v.region) = upper(",
                text(self.region.as_deref()),
                ")",
            )
            .when("v.pollutant_key = ", text(self.pollutant.as_deref()), "")
            .when("v.benchmark_type = ", text(self.benchmark_type), "")
            .when("v.severity = ", text(self.severity), "")
            .when("v.status = ", text(self.status), "")
            .when("v.reporting_year = ", self.year.map(Arg::Int), "")
            .when("v.last_date >= ", self.date_from.map(Arg::Date), "")
            .when("v.first_date <= ", self.date_to.map(Arg::Date), "")
            .when("v.screening = ", self.screening.map(Arg::Bool), "")
            .when(
                "v.violation_type = ",
                text(self.violation_type.as_deref()),
                "",
            )
            .when("v.serious = ", self.serious.map(Arg::Bool), "")
            .when(
                // Computed events with an exceeding sample taken at that monitoring location
                // (a SMARTS location name, an eSMR location code).
                "v.kind = 'computed' and exists (select 1 from violation_sample s
                   where s.event_id = v.uid and s.exceeds and lower(case s.source_table
                     when 'smarts_industrial_monitoring' then (select m.monitoring_location_name
                       from smarts_industrial_monitoring m where m.id = s.source_row_id)
                     when 'smarts_construction_monitoring' then (select m.monitoring_location_name
                       from smarts_construction_monitoring m where m.id = s.source_row_id)
                     else (select x.location from esmr_sample x where x.id = s.source_row_id)
                   end) = lower(",
                text(self.monitoring_location.as_deref()),
                "))",
            );
        if !self.include_resolved {
            c.always("coalesce(v.status, '') not in ('resolved', 'dismissed')");
        }
        c
    }
}

/// The `source` values of a `source` parameter value.
fn sources_of(source: &str) -> Vec<&'static str> {
    match source {
        "esmr" => vec!["esmr"],
        "smarts" => vec!["smarts_industrial", "smarts_construction"],
        "smarts_industrial" => vec!["smarts_industrial"],
        "smarts_construction" => vec!["smarts_construction"],
        _ => vec!["esmr", "smarts_industrial", "smarts_construction"],
    }
}

fn filter(q: &Query) -> Result<Filter, ApiError> {
    let pollutant = q.text("pollutant")?.map(|p| p.to_lowercase());
    if let Some(p) = &pollutant
        && !crate::domain::pollutant::KEYS.contains(&p.as_str())
    {
        return Err(ApiError::bad("pollutant", "unknown pollutant key"));
    }
    let (date_from, date_to) = list::date_range(q)?;
    Ok(Filter {
        kind: q.one_of("kind", KINDS)?.filter(|k| *k != "all"),
        sources: sources_of(q.one_of("source", SOURCES)?.unwrap_or("all")),
        facility_id: q.int("facilityId", 1..=i64::MAX)?,
        county: q.text("county")?,
        region: q.text("region")?,
        pollutant,
        benchmark_type: q.one_of("type", TYPES)?,
        severity: q.one_of("severity", SEVERITIES)?,
        status: q.one_of("status", STATUSES)?,
        year: q.int("year", 1990..=2100)?,
        date_from,
        date_to,
        screening: list::flag(q, "screening")?,
        include_resolved: list::flag(q, "includeResolved")?.unwrap_or(true),
        violation_type: q.text("violationType")?,
        serious: list::flag(q, "serious")?,
        monitoring_location: q.text("monitoringLocation")?,
    })
}

const CSV_COLUMNS: &[&str] = &[
    "kind",
    "id",
    "facilityId",
    "facilityName",
    "county",
    "region",
    "source",
    "reportingYear",
    "firstDate",
    "lastDate",
    "status",
    "pollutant",
    "benchmarkType",
    "measure",
    "value",
    "unit",
    "maxRatio",
    "severity",
    "sampleCount",
    "screening",
    "unverified",
    "violationId",
    "type",
    "seriousViolation",
    "priority",
    "description",
];

/// `GET /api/violations`.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(
        state,
        &req,
        "violations",
        HOT,
        Some(CSV_COLUMNS),
        |q| async move {
            let f = filter(&q)?;
            let limit = q.limit(50, 1000)?;
            page(state, &f, &q, limit).await
        },
    )
    .await
}

async fn page(state: &ApiState, f: &Filter, q: &Query, limit: i64) -> Result<Value, ApiError> {
    let feed = feed();
    let conditions = f.conditions();
    let known_total = match stored_total(state, f).await? {
        Some(n) => n,
        None => list::count(&state.pool, feed.counted(f), &conditions).await?,
    };
    let listing = list::Listing {
        route: "GET /api/violations",
        item: "v.item",
        from: &feed.union,
        id: "v.uid",
        sort: SORTS.parse(q)?,
        conditions: &conditions,
        limit,
        known_total: Some(known_total),
    };
    let branches = [feed.branches[0].as_str(), feed.branches[1].as_str()];
    let (data, page) = list::merged_page(state, &listing, &branches, q).await?;
    Ok(json!({
        "data": data,
        "page": page,
        "meta": { "freshness": freshness(&state.pool).await? },
    }))
}

/// The total of a list filtered at most by kind, source and county or region, from the stored
/// stats of its scope (`total`, or the kind's count in `byKind`; a single SMARTS program's
/// from `bySource` of all kinds); `None` when another filter is set or nothing is stored.
async fn stored_total(state: &ApiState, f: &Filter) -> Result<Option<i64>, ApiError> {
    let by_program = f.sources.len() == 1 && f.sources[0] != "esmr";
    let (Some(key), Some(facet)) = (scope_key(f), facet(f)) else {
        return Ok(None);
    };
    // A facet of computed events (regulatory violations have none: the filter leaves them
    // out) is counted per scope over every program of the scope.
    match (facet, f.kind, by_program) {
        (None, Some(_), true) | (Some(_), Some("regulatory"), _) | (Some(_), _, true) => {
            return Ok(None);
        }
        _ => {}
    }
    let Some(stats) = stored_stats(state, &key).await? else {
        return Ok(None);
    };
    Ok(match (facet, f.kind, by_program) {
        (Some((field, value)), _, _) => Some(stats[field][value].as_i64().unwrap_or(0)),
        (None, None, false) => stats["total"].as_i64(),
        (None, Some(kind), _) => Some(stats["byKind"][kind].as_i64().unwrap_or(0)),
        (None, None, true) => Some(stats["bySource"][f.sources[0]].as_i64().unwrap_or(0)),
    })
}

/// The one computed-event facet a filter sets (`severity`, `pollutant`, `type`) as the stats
/// field that counts it and its value: `Some(None)` when it sets none, `None` when several.
fn facet(f: &Filter) -> Option<Option<(&'static str, &str)>> {
    let set: Vec<(&'static str, &str)> = [
        ("bySeverity", f.severity),
        ("byPollutant", f.pollutant.as_deref()),
        ("byType", f.benchmark_type),
    ]
    .into_iter()
    .filter_map(|(field, v)| v.map(|v| (field, v)))
    .collect();
    match set.as_slice() {
        [] => Some(None),
        [one] => Some(Some(*one)),
        _ => None,
    }
}

/// The stored stats of `key` (`stats:{source}|{area}`, kinds together).
async fn stored_stats(state: &ApiState, key: &str) -> Result<Option<Value>, ApiError> {
    Ok(sqlx::query_scalar!(
        "select body from dashboard_snapshot where scope = $1",
        format!("stats:{key}")
    )
    .fetch_optional(&state.pool)
    .await?)
}

/// `{source}|{area scope}` of the stored stats a filter can be answered from: at most a kind,
/// a source (all, esmr or both SMARTS programs: a single program reads the stats of all) and
/// a county or a region; `None` otherwise.
fn stored_key(f: &Filter) -> Option<String> {
    scope_key(f).filter(|_| facet(f) == Some(None))
}

/// [`stored_key`] of the filter without its computed-event facet.
fn scope_key(f: &Filter) -> Option<String> {
    let only_area = f.facility_id.is_none()
        && f.status.is_none()
        && f.year.is_none()
        && f.date_from.is_none()
        && f.date_to.is_none()
        && f.screening.is_none()
        && f.include_resolved
        && f.violation_type.is_none()
        && f.serious.is_none()
        && f.monitoring_location.is_none();
    let area = match (&f.county, &f.region) {
        _ if !only_area => return None,
        (None, None) => String::new(),
        (Some(c), None) => format!("county:{}", c.to_lowercase()),
        (None, Some(r)) => format!("region:{}", r.to_uppercase()),
        (Some(_), Some(_)) => return None,
    };
    let source = STORED_SOURCES
        .iter()
        .find(|s| sources_of(s) == f.sources)
        .copied()
        .unwrap_or("all");
    Some(format!("{source}|{area}"))
}

/// The sources whose stats are stored per area scope (kinds together).
const STORED_SOURCES: &[&str] = &["all", "esmr", "smarts"];

/// `GET /api/violations/stats`: the same filters, aggregated.
pub async fn handle_stats(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(state, &req, "violations-stats", HOT, None, |q| async move {
        let f = filter(&q)?;
        let stored = match (stored_key(&f), f.kind) {
            (Some(key), None) if STORED_SOURCES.iter().any(|s| sources_of(s) == f.sources) => {
                stored_stats(state, &key).await?
            }
            _ => None,
        };
        let data = match stored {
            Some(body) => body,
            None => stats_of(&state.pool, &f).await?,
        };
        Ok(json!({
            "data": data,
            "meta": { "freshness": freshness(&state.pool).await? },
        }))
    })
    .await
}

async fn stats_of(pool: &sqlx::PgPool, f: &Filter) -> Result<Value, ApiError> {
    let by = |column: &str| list::counts_by("m", column);
    // What only computed events have is counted over them, what only regulatory violations
    // have over those.
    let computed = |column: &str| list::counts_by("m where m.kind = 'computed'", column);
    let expr = format!(
        "jsonb_build_object(
             'total', (select count(*) from m),
             'byKind', jsonb_build_object(
                 'computed', (select count(*) from m where kind = 'computed'),
                 'regulatory', (select count(*) from m where kind = 'regulatory')),
             'events', (select count(*) from m where kind = 'computed'),
             'facilities', (select count(distinct facility_id) from m),
             'bySource', {source}, 'byStatus', {status}, 'byReportingYear', {year},
             'bySeverity', {sev}, 'byType', {kind}, 'byPollutant', {pollutant},
             'screening', (select count(*) from m where screening),
             'unverified', (select count(*) from m where unverified),
             'serious', (select count(*) from m where serious),
             'byViolationType', {violation_type})",
        source = by("source"),
        status = by("status"),
        year = by("reporting_year"),
        sev = computed("severity"),
        kind = computed("benchmark_type"),
        pollutant = computed("pollutant_key"),
        violation_type = list::counts_by("m where m.kind = 'regulatory'", "violation_type"),
    );
    list::aggregate(
        pool,
        "v.kind, v.facility_id, v.severity, v.status, v.benchmark_type, v.source,
         v.pollutant_key, v.reporting_year, v.screening, v.unverified, v.violation_type,
         v.serious",
        &expr,
        feed().counted(f),
        &f.conditions(),
    )
    .await
}

/// The stored stats of every stored source for the area scope `area` (a `dashboard_snapshot`
/// scope key: `''`, `county:…`, `region:…`), as `(key, body)`.
pub(crate) async fn stats_to_store(
    pool: &sqlx::PgPool,
    area: &str,
    county: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<(String, Value)>, ApiError> {
    let mut out = Vec::new();
    for source in STORED_SOURCES {
        let f = Filter {
            sources: sources_of(source),
            county: county.map(str::to_owned),
            region: region.map(str::to_owned),
            include_resolved: true,
            ..Filter::default()
        };
        out.push((format!("stats:{source}|{area}"), stats_of(pool, &f).await?));
    }
    Ok(out)
}
