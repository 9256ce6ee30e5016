//! `GET /api/nal-levels`: IGP ERA Level status per facility x pollutant, computed from the
//! monitoring results ("who is in Level 2 for copper in Region 4?":
//! `?pollutant=copper&region=4&level=level_2`; one facility: `?facilityId=…`).
//!
//! Only facility x pollutant pairs that ever exceeded an NAL have a row; everything else is at
//! Baseline. Levels are computed by this service from the published results (SMARTS assigns the
//! official ones); return to Baseline after ERA completion is not modelled.

use super::list::{self, Arg, Conditions};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

const LEVELS: &[&str] = &["baseline", "level_1", "level_2"];

/// Handles the request.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    super::list::uncached(&req, "public, max-age=300", |q| respond(state, q)).await
}

/// Sorts of the rows: the most recent Level change first by default (`since`: the day the
/// current Level began, Level 2 over Level 1).
pub static SORTS: list::Sorts = list::Sorts {
    fields: &[
        list::SortField::required(
            "since",
            "coalesce(l.level_2_since, l.level_1_since)",
            "date",
        ),
        list::SortField::required("level1Since", "l.level_1_since", "date"),
        list::SortField::nullable("level2Since", "l.level_2_since", "date"),
        list::SortField::required(
            "exceedanceYears",
            "cardinality(l.exceedance_years)",
            "integer",
        ),
        list::SortField::required("name", "f.name", "text"),
        list::SortField::required("facilityId", "l.facility_id", "bigint"),
    ],
    default: "-since",
};

const ITEM: &str = "jsonb_build_object(
        'facility', jsonb_build_object('id', f.id, 'name', f.name, 'county', f.county,
                                       'region', f.region),
        'pollutant', l.pollutant_key, 'level', l.level,
        'level1Since', l.level_1_since, 'level2Since', l.level_2_since,
        'exceedanceYears', l.exceedance_years,
        'events', (select jsonb_agg(jsonb_build_object('id', e.id,
                       'reportingYear', e.reporting_year, 'type', e.benchmark_type,
                       'value', e.value, 'severity', e.severity, 'status', e.status)
                       order by e.reporting_year, e.benchmark_type)
                   from violation_event e
                   where e.facility_id = l.facility_id
                     and e.pollutant_key = l.pollutant_key
                     and e.source = 'smarts_industrial' and e.retracted_at is null
                     and e.benchmark_type in ('NAL_ANNUAL', 'NAL_INSTANT')))";

const FROM: &str = "nal_level_current l join facility f on f.id = l.facility_id";

/// The paging key: (facility_id, pollutant) is unique, encoded as facility_id * 64 + the
/// pollutant's ordinal (a synthetic row number would shift between pages).
fn key() -> &'static str {
    static KEY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        // The keys are this crate's own constants (lowercase identifiers), not user input.
        let keys: Vec<String> = crate::domain::pollutant::KEYS
            .iter()
            .map(|k| format!("'{k}'"))
            .collect();
        format!(
            "(l.facility_id * 64 + array_position(array[{}]::text[], l.pollutant_key))",
            keys.join(", ")
        )
    });
    &KEY
}

async fn respond(state: &ApiState, q: Query) -> Result<Value, ApiError> {
    let limit = q.limit(100, 1000)?;
    let pollutant = q.text("pollutant")?.map(|p| p.to_lowercase());
    if let Some(p) = &pollutant
        && !crate::domain::pollutant::KEYS.contains(&p.as_str())
    {
        return Err(ApiError::bad(
            "pollutant",
            format!(
                "unknown pollutant key; one of: {}",
                crate::domain::pollutant::KEYS.join(", ")
            ),
        ));
    }
    let text = |v: Option<&str>| v.map(|s| Arg::Text(s.to_owned()));
    let mut conditions = Conditions::default();
    conditions
        .when("l.pollutant_key = ", text(pollutant.as_deref()), "")
        .when("l.level = ", text(q.one_of("level", LEVELS)?), "")
        .when(
            "l.facility_id = ",
            q.int("facilityId", 1..=i64::MAX)?.map(Arg::Int),
            "",
        )
        .facility_area(&q, "f")?;
    let listing = list::Listing {
        route: "GET /api/nal-levels",
        item: ITEM,
        from: FROM,
        id: key(),
        sort: SORTS.parse(&q)?,
        conditions: &conditions,
        limit,
        known_total: None,
    };
    let (data, page) = list::page(state, &listing, &q).await?;
    Ok(json!({
        "data": data,
        "page": page,
        "meta": {
            "note": "computed from published results (SMARTS assigns the official Level); baseline rows exceeded in a year whose Level change starts next July 1; see docs/VIOLATION_SCHEMA_MIGRATION.md",
            "freshness": freshness(&state.pool).await?,
        },
    }))
}
