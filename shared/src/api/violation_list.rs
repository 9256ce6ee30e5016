//! `GET /api/violations` and `GET /api/violations/stats`: the computed exceedance events of both
//! programs (`source=all|esmr|smarts`). SMARTS *regulatory* violations have their own endpoint.
//!
//! Filters: `facilityId`, `county`, `region`, `pollutant`, `type` (benchmark type), `severity`,
//! `status`, `year` (reporting year, July–June), `dateFrom` / `dateTo` (ISO; events whose samples
//! overlap the range), `screening` (`true` / `false`; both by default). Retracted events are
//! never listed. Newest first; opaque cursor; `limit` ≤ 1000; `format=csv` for a spreadsheet.

use super::list::{self, HOT};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query, encode_cursor};
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

/// The validated filters, bound as $1..$12 by [`WHERE`].
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

const WHERE: &str = "e.retracted_at is null and e.source = any($1)
    and ($2::bigint is null or e.facility_id = $2)
    and ($3::text is null or lower(f.county) = lower($3))
    and ($4::text is null or upper(f.region) = upper($4))
    and ($5::text is null or e.pollutant_key = $5)
    and ($6::text is null or e.benchmark_type = $6)
    and ($7::text is null or e.severity = $7)
    and ($8::text is null or e.status = $8)
    and ($9::bigint is null or e.reporting_year = $9)
    and ($10::date is null or e.last_date >= $10)
    and ($11::date is null or e.first_date <= $11)
    and ($12::boolean is null or e.screening = $12)";

fn filter(q: &Query) -> Result<Filter, ApiError> {
    let sources = match q.one_of("source", SOURCES)?.unwrap_or("all") {
        "esmr" => vec!["esmr"],
        "smarts" => vec!["smarts_industrial", "smarts_construction"],
        _ => vec!["esmr", "smarts_industrial", "smarts_construction"],
    };
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

macro_rules! bind_filter {
    ($q:expr, $f:expr) => {
        $q.bind(&$f.sources)
            .bind($f.facility_id)
            .bind(&$f.county)
            .bind(&$f.region)
            .bind(&$f.pollutant)
            .bind($f.kind)
            .bind($f.severity)
            .bind($f.status)
            .bind($f.year)
            .bind($f.date_from)
            .bind($f.date_to)
            .bind($f.screening)
    };
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
            page(state, &f, q.cursor()?, limit).await
        },
    )
    .await
}

async fn page(
    state: &ApiState,
    f: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Value, ApiError> {
    let sql = format!(
        "select e.id, jsonb_build_object(
             'id', e.id, 'facilityId', e.facility_id, 'facilityName', f.name,
             'county', f.county, 'region', f.region, 'source', e.source,
             'pollutant', e.pollutant_key, 'reportingYear', e.reporting_year,
             'benchmarkType', e.benchmark_type, 'measure', e.measure, 'value', e.value,
             'unit', e.unit, 'maxRatio', e.max_ratio, 'severity', e.severity,
             'sampleCount', e.sample_count, 'firstDate', e.first_date, 'lastDate', e.last_date,
             'screening', e.screening, 'unverified', e.unverified, 'ndPolicy', e.nd_policy,
             'status', e.status)
         from violation_event e join facility f on f.id = e.facility_id
         where {WHERE} and ($13::bigint is null or e.id < $13)
         order by e.id desc limit $14"
    );
    let rows: Vec<(i64, Value)> = bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), f)
        .bind(before)
        .bind(limit)
        .fetch_all(&state.pool)
        .await?;
    let total = match stored_total(state, f).await? {
        Some(n) => n,
        None => {
            bind_filter!(
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                    "select count(*) from violation_event e join facility f on f.id = e.facility_id where {WHERE}"
                ))),
                f
            )
            .fetch_one(&state.pool)
            .await?
        }
    };
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|(id, _)| encode_cursor(*id)))
        .flatten();
    Ok(json!({
        "data": rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "page": { "limit": limit, "nextCursor": next, "total": total },
        "meta": { "freshness": freshness(&state.pool).await? },
    }))
}

/// The total of a list filtered at most by source and by county or region, from the stored
/// dashboard of that scope (`violations.bySource` counts the same events: not retracted, by the
/// facility's county or region); `None` when another filter is set or nothing is stored.
async fn stored_total(state: &ApiState, f: &Filter) -> Result<Option<i64>, ApiError> {
    let only_area = f.facility_id.is_none()
        && f.pollutant.is_none()
        && f.kind.is_none()
        && f.severity.is_none()
        && f.status.is_none()
        && f.year.is_none()
        && f.date_from.is_none()
        && f.date_to.is_none()
        && f.screening.is_none();
    let scope = match (&f.county, &f.region) {
        _ if !only_area => return Ok(None),
        (None, None) => String::new(),
        (Some(c), None) => format!("county:{}", c.to_lowercase()),
        (None, Some(r)) => format!("region:{}", r.to_uppercase()),
        (Some(_), Some(_)) => return Ok(None),
    };
    let by_source: Option<Value> = sqlx::query_scalar(
        "select body -> 'violations' -> 'bySource' from dashboard_snapshot where scope = $1",
    )
    .bind(scope)
    .fetch_optional(&state.pool)
    .await?;
    Ok(by_source.map(|b| f.sources.iter().map(|s| b[*s].as_i64().unwrap_or(0)).sum()))
}

/// `GET /api/violations/stats`: the same filters, aggregated.
pub async fn handle_stats(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(state, &req, "violations-stats", HOT, None, |q| async move {
        aggregate(state, &filter(&q)?).await
    })
    .await
}

async fn aggregate(state: &ApiState, f: &Filter) -> Result<Value, ApiError> {
    let by = |column: &str| list::counts_by("m", column);
    let sql = format!(
        "with m as (select e.* from violation_event e join facility f on f.id = e.facility_id
                    where {WHERE})
         select jsonb_build_object(
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
    let data: Value = bind_filter!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), f)
        .fetch_one(&state.pool)
        .await?;
    Ok(json!({
        "data": data,
        "meta": { "freshness": freshness(&state.pool).await? },
    }))
}
