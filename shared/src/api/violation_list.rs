//! `GET /api/violations` and `GET /api/violations/stats`: the computed exceedance events of both
//! programs (`source=all|esmr|smarts`). SMARTS *regulatory* violations have their own endpoint.
//!
//! Filters: `facilityId`, `county`, `region`, `pollutant`, `type` (benchmark type), `severity`,
//! `status`, `year` (reporting year, July–June), `dateFrom` / `dateTo` (ISO; events whose samples
//! overlap the range), `screening` (`true` / `false`; both by default). Retracted events are
//! never listed. Newest first; opaque cursor; `limit` ≤ 1000; `format=csv` for a spreadsheet.

use super::list::{self, Arg, Conditions, HOT};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

pub(crate) const SOURCES: &[&str] = &["all", "esmr", "smarts"];
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
pub(crate) const STATUSES: &[&str] = &["open", "under_review", "resolved", "dismissed"];

/// Sorts of the events: the newest sample first by default.
pub(crate) static SORTS: list::Sorts = list::Sorts {
    fields: &[
        list::SortField::nullable("lastDate", "e.last_date", "date"),
        list::SortField::nullable("firstDate", "e.first_date", "date"),
        list::SortField::required("detectedAt", "e.detected_at", "timestamptz"),
        list::SortField::nullable("maxRatio", "e.max_ratio", "numeric"),
        list::SortField::required("id", "e.id", "bigint"),
    ],
    default: "-lastDate",
};

/// The validated filters.
struct Filter {
    sources: Vec<&'static str>,
    facility_id: Option<i64>,
    county: Option<String>,
    region: Option<String>,
    pollutant: Option<String>,
    kind: Option<&'static str>,
    severity: Option<&'static str>,
    status: Option<&'static str>,
    year: Option<i64>,
    date_from: Option<chrono::NaiveDate>,
    date_to: Option<chrono::NaiveDate>,
    screening: Option<bool>,
}

/// Events `e` joined to their facility `f`.
const FROM: &str = "violation_event e join facility f on f.id = e.facility_id";

impl Filter {
    /// Only the filters given become SQL, so every query is planned for its own filters.
    fn conditions(&self) -> Conditions {
        let text = |v: Option<&str>| v.map(|s| Arg::Text(s.to_owned()));
        let mut c = Conditions::default();
        c.always("e.retracted_at is null")
            .when(
                "e.source = any(",
                Some(Arg::Texts(
                    self.sources.iter().map(|s| (*s).to_owned()).collect(),
                )),
                ")",
            )
            .when("e.facility_id = ", self.facility_id.map(Arg::Int), "")
            .when(
                "lower(f.county) = lower(",
                text(self.county.as_deref()),
                ")",
            )
            .when(
                "upper(f.region) = upper(",
                text(self.region.as_deref()),
                ")",
            )
            .when("e.pollutant_key = ", text(self.pollutant.as_deref()), "")
            .when("e.benchmark_type = ", text(self.kind), "")
            .when("e.severity = ", text(self.severity), "")
            .when("e.status = ", text(self.status), "")
            .when("e.reporting_year = ", self.year.map(Arg::Int), "")
            .when("e.last_date >= ", self.date_from.map(Arg::Date), "")
            .when("e.first_date <= ", self.date_to.map(Arg::Date), "")
            .when("e.screening = ", self.screening.map(Arg::Bool), "");
        c
    }
}

/// The `violation_event.source` values of a `source` parameter value.
fn sources_of(source: &str) -> Vec<&'static str> {
    match source {
        "esmr" => vec!["esmr"],
        "smarts" => vec!["smarts_industrial", "smarts_construction"],
        _ => vec!["esmr", "smarts_industrial", "smarts_construction"],
    }
}

fn filter(q: &Query) -> Result<Filter, ApiError> {
    let sources = sources_of(q.one_of("source", SOURCES)?.unwrap_or("all"));
    let pollutant = q.text("pollutant")?.map(|p| p.to_lowercase());
    if let Some(p) = &pollutant
        && !crate::domain::pollutant::KEYS.contains(&p.as_str())
    {
        return Err(ApiError::bad("pollutant", "unknown pollutant key"));
    }
    let screening = match q.text("screening")?.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::bad("screening", "must be true or false")),
    };
    let f = Filter {
        sources,
        facility_id: q.int("facilityId", 1..=i64::MAX)?,
        county: q.text("county")?,
        region: q.text("region")?,
        pollutant,
        kind: q.one_of("type", TYPES)?,
        severity: q.one_of("severity", SEVERITIES)?,
        status: q.one_of("status", STATUSES)?,
        year: q.int("year", 1990..=2100)?,
        date_from: q.date("dateFrom")?,
        date_to: q.date("dateTo")?,
        screening,
    };
    if let (Some(a), Some(b)) = (f.date_from, f.date_to)
        && a > b
    {
        return Err(ApiError::bad("dateTo", "must not be before dateFrom"));
    }
    Ok(f)
}

const CSV_COLUMNS: &[&str] = &[
    "id",
    "facilityId",
    "facilityName",
    "county",
    "region",
    "source",
    "pollutant",
    "reportingYear",
    "benchmarkType",
    "measure",
    "value",
    "unit",
    "maxRatio",
    "severity",
    "sampleCount",
    "firstDate",
    "lastDate",
    "screening",
    "unverified",
    "status",
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
    let item = "jsonb_build_object(
             'id', e.id, 'facilityId', e.facility_id, 'facilityName', f.name,
             'county', f.county, 'region', f.region, 'source', e.source,
             'pollutant', e.pollutant_key, 'reportingYear', e.reporting_year,
             'benchmarkType', e.benchmark_type, 'measure', e.measure, 'value', e.value,
             'unit', e.unit, 'maxRatio', e.max_ratio, 'severity', e.severity,
             'sampleCount', e.sample_count, 'firstDate', e.first_date, 'lastDate', e.last_date,
             'screening', e.screening, 'unverified', e.unverified, 'ndPolicy', e.nd_policy,
             'status', e.status)";
    let known = match stored_total(state, f).await? {
        Some(n) => Some(n),
        // Without an area filter the count needs no facility join.
        None if f.county.is_none() && f.region.is_none() => {
            let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "select count(*) from violation_event e where true",
            );
            f.conditions().push_to(&mut qb);
            Some(qb.build_query_scalar().fetch_one(&state.pool).await?)
        }
        None => None,
    };
    let listing = list::Listing {
        route: "GET /api/violations",
        item,
        from: FROM,
        id: "e.id",
        sort: SORTS.parse(q)?,
        conditions: &f.conditions(),
        limit,
        known_total: known,
    };
    let (data, page) = list::page(state, &listing, q).await?;
    Ok(json!({
        "data": data,
        "page": page,
        "meta": { "freshness": freshness(&state.pool).await? },
    }))
}

/// The total of a list filtered at most by source and by county or region, from the stored
/// dashboard of that scope (`violations.bySource` counts the same events: not retracted, by the
/// facility's county or region); `None` when another filter is set or nothing is stored.
async fn stored_total(state: &ApiState, f: &Filter) -> Result<Option<i64>, ApiError> {
    let Some(key) = stored_key(f) else {
        return Ok(None);
    };
    let area = key.split_once('|').map(|(_, a)| a).unwrap_or_default();
    let by_source: Option<Value> = sqlx::query_scalar!(
        r#"select body -> 'violations' -> 'bySource' as "v!" from dashboard_snapshot where scope = $1"#,
        area
    )
    .fetch_optional(&state.pool)
    .await?;
    Ok(by_source.map(|b| f.sources.iter().map(|s| b[*s].as_i64().unwrap_or(0)).sum()))
}

/// `{source}|{area scope}` when the filter is at most a source and a county or a region (what
/// is stored per sync); `None` otherwise.
fn stored_key(f: &Filter) -> Option<String> {
    let only_area = f.facility_id.is_none()
        && f.pollutant.is_none()
        && f.kind.is_none()
        && f.severity.is_none()
        && f.status.is_none()
        && f.year.is_none()
        && f.date_from.is_none()
        && f.date_to.is_none()
        && f.screening.is_none();
    let area = match (&f.county, &f.region) {
        _ if !only_area => return None,
        (None, None) => String::new(),
        (Some(c), None) => format!("county:{}", c.to_lowercase()),
        (None, Some(r)) => format!("region:{}", r.to_uppercase()),
        (Some(_), Some(_)) => return None,
    };
    let source = SOURCES
        .iter()
        .find(|s| sources_of(s) == f.sources)
        .copied()
        .unwrap_or("all");
    Some(format!("{source}|{area}"))
}

/// `GET /api/violations/stats`: the same filters, aggregated.
pub async fn handle_stats(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(state, &req, "violations-stats", HOT, None, |q| async move {
        let f = filter(&q)?;
        let stored = match stored_key(&f) {
            Some(key) => {
                sqlx::query_scalar!(
                    "select body from dashboard_snapshot where scope = $1",
                    format!("stats:{key}")
                )
                .fetch_optional(&state.pool)
                .await?
            }
            None => None,
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
    let expr = format!(
        "jsonb_build_object(
             'events', (select count(*) from m),
             'facilities', (select count(distinct facility_id) from m),
             'bySeverity', {sev}, 'byStatus', {status}, 'byType', {kind}, 'bySource', {source},
             'byPollutant', {pollutant}, 'byReportingYear', {year},
             'screening', (select count(*) from m where screening),
             'unverified', (select count(*) from m where unverified))",
        sev = by("severity"),
        status = by("status"),
        kind = by("benchmark_type"),
        source = by("source"),
        pollutant = by("pollutant_key"),
        year = by("reporting_year"),
    );
    list::aggregate(
        pool,
        "e.facility_id, e.severity, e.status, e.benchmark_type, e.source, e.pollutant_key,
         e.reporting_year, e.screening, e.unverified",
        &expr,
        FROM,
        &f.conditions(),
    )
    .await
}

/// The stored stats of every source for the area scope `area` (a `dashboard_snapshot` scope
/// key: `''`, `county:…`, `region:…`), as `(key, body)`.
pub(crate) async fn stats_to_store(
    pool: &sqlx::PgPool,
    area: &str,
    county: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<(String, Value)>, ApiError> {
    let mut out = Vec::new();
    for source in SOURCES {
        let f = Filter {
            sources: sources_of(source),
            facility_id: None,
            county: county.map(str::to_owned),
            region: region.map(str::to_owned),
            pollutant: None,
            kind: None,
            severity: None,
            status: None,
            year: None,
            date_from: None,
            date_to: None,
            screening: None,
        };
        out.push((format!("stats:{source}|{area}"), stats_of(pool, &f).await?));
    }
    Ok(out)
}
