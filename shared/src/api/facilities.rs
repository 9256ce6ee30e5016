//! `GET /api/facilities`: the facility directory. One item per canonical facility across
//! SMARTS industrial, SMARTS construction and eSMR, with its linked records, permit ids, worst
//! ERA Level, counts, penalties and latest dates, all read from its stored summary row
//! (`facility_summary`, refreshed whenever a state is published and after a review action),
//! so filters, sorts and counts read one table through its indexes.
//!
//! Triage filters for a notice letter: `windowStart` (default: five years before today)
//! bounds the look-back window; `exceededInWindow`, `ongoing` (an exceedance in the current
//! or the previous reporting year) and `enforcedInWindow=false` (no enforcement action issued
//! in the window: the diligent-prosecution check) combine with every other filter.

use super::list::{self, Arg, Conditions, SortField as F};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

pub(crate) const STATUSES: &[&str] = &[
    "Active",
    "Terminated",
    "No Action Required",
    "Undetermined",
    "NOI Required",
    "NONA Submitted",
    "NOI Filed",
    "NEC Required",
    "NONA Required",
    "SIC Not Required",
    "Incorrect Operator",
    "Expired",
];
pub(crate) const REGIONS: &[&str] = crate::alerts::area::REGIONS;

/// `source` values: which dataset has a record linked to the facility.
pub(crate) const SOURCES: &[&str] = &["smarts_industrial", "smarts_construction", "esmr"];
/// `minLevel` values.
pub(crate) const LEVELS: &[&str] = &["level_1", "level_2"];

/// Sorts of the directory: the latest activity (sample, violation, inspection, enforcement)
/// first by default.
pub(crate) static SORTS: list::Sorts = list::Sorts {
    fields: &[
        F::nullable("lastActivityDate", "s.last_activity_date", "date"),
        F::required("name", "s.name", "text"),
        F::required("openEvents", "s.open_events", "integer"),
        F::required("events", "s.events", "integer"),
        F::required("smartsViolations", "s.smarts_violations", "integer"),
        F::required("enforcementActions", "s.enforcement_actions", "integer"),
        F::required("inspections", "s.inspections", "integer"),
        F::required("penaltiesAssessed", "s.penalties_assessed", "numeric"),
        F::required("penaltiesPaid", "s.penalties_paid", "numeric"),
        F::nullable("lastSampleDate", "s.last_sample_date", "date"),
        F::nullable("lastInspectionDate", "s.last_inspection_date", "date"),
        F::nullable("lastEnforcementDate", "s.last_enforcement_date", "date"),
        F::nullable("lastExceedanceDate", "s.last_exceedance_date", "date"),
        F::required(
            "samplingShortfalls",
            "cardinality(s.sampling_shortfalls)",
            "integer",
        ),
        F::required("id", "s.facility_id", "bigint"),
    ],
    default: "-lastActivityDate",
};

const CSV_COLUMNS: &[&str] = &[
    "id",
    "name",
    "county",
    "region",
    "address.street",
    "address.city",
    "address.zip",
    "location.latitude",
    "location.longitude",
    "primarySic",
    "sources.smartsIndustrial",
    "sources.smartsConstruction",
    "sources.esmr",
    "permitIds.wdids",
    "permitIds.appIds",
    "permitIds.esmrPlaceIds",
    "nalLevel",
    "counts.openEvents",
    "counts.events",
    "counts.smartsViolations",
    "counts.enforcementActions",
    "counts.inspections",
    "penalties.assessed",
    "penalties.paid",
    "dates.lastSample",
    "dates.lastViolation",
    "dates.lastInspection",
    "dates.lastEnforcement",
    "dates.lastExceedance",
    "dates.lastActivity",
];

/// The ERA Level of the summary `s` as of today, from the dates it reached each Level (a July
/// 1 changes it without a rebuild): the directory's and the map's.
macro_rules! nal_level_today {
    () => {
        "case when s.level_2_since <= current_date then 'level_2'
              when s.level_1_since <= current_date then 'level_1'
              else 'baseline' end"
    };
}
pub(crate) use nal_level_today;

/// One directory item: the stored item of the summary `s` (`repo::summary::refresh`) with the
/// ERA Level as of today and the time of the rebuild.
const ITEM: &str = concat!(
    "s.item || jsonb_build_object('nalLevel', ",
    nal_level_today!(),
    ", 'summaryComputedAt', s.computed_at)"
);

/// Handles the request; every client mistake is a 400 naming the parameter.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(
        state,
        &req,
        "facilities",
        list::HOT,
        Some(CSV_COLUMNS),
        |q| async move { respond(state, &q).await },
    )
    .await
}

/// The first day of the window: `windowStart`, or five years before `today`.
pub(crate) fn window_start(
    q: &Query,
    today: chrono::NaiveDate,
) -> Result<chrono::NaiveDate, ApiError> {
    Ok(match q.date("windowStart")? {
        Some(d) if d > today => {
            return Err(ApiError::bad("windowStart", "must not be after today"));
        }
        Some(d) => d,
        None => today
            .checked_sub_months(chrono::Months::new(60))
            .unwrap_or(chrono::NaiveDate::MIN),
    })
}

/// Only the filters given become SQL, so every query is planned for its own filters.
fn conditions(q: &Query, today: chrono::NaiveDate) -> Result<Filters, ApiError> {
    let text = |name: &str| q.text(name).map(|v| v.map(Arg::Text));
    let one = |name: &str, values: &[&'static str]| {
        q.one_of(name, values)
            .map(|v| v.map(|s| Arg::Text(s.to_owned())))
    };
    let sic = q.text("sic")?;
    if let Some(s) = &sic
        && (!s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 4)
    {
        return Err(ApiError::bad("sic", "must be 1 to 4 digits of a SIC code"));
    }
    let pollutant = q.text("pollutant")?.map(|p| p.to_lowercase());
    if let Some(p) = &pollutant
        && !crate::domain::pollutant::KEYS.contains(&p.as_str())
    {
        return Err(ApiError::bad("pollutant", "unknown pollutant key"));
    }
    let like = |v: Option<String>| {
        v.map(|s| {
            Arg::Text(format!(
                "%{}%",
                crate::repo::facilities::like_escape(&s.to_lowercase())
            ))
        })
    };
    let mut c = Conditions::default();
    c.when("lower(s.name) like ", like(q.text("q")?), "")
        .when(
            "s.primary_sic like ",
            sic.map(|s| Arg::Text(format!("{s}%"))),
            "",
        )
        .when("s.wdids @> array[", text("wdid")?, "::text]")
        .when("s.app_ids @> array[", text("appId")?, "::text]")
        .when("s.esmr_place_ids @> array[", text("placeId")?, "::text]")
        .when(
            "exists (select 1 from unnest(s.permit_types) p where lower(p) = lower(",
            text("permitType")?,
            "))",
        )
        .when("s.statuses @> array[", one("status", STATUSES)?, "::text]")
        .when(
            "s.pollutants @> array[",
            pollutant.map(Arg::Text),
            "::text]",
        )
        .when(
            "s.last_inspection_date >= ",
            q.date("inspectedSince")?.map(Arg::Date),
            "",
        );
    match q.one_of("source", SOURCES)? {
        Some("smarts_industrial") => c.always("cardinality(s.smarts_industrial_ids) > 0"),
        Some("smarts_construction") => c.always("cardinality(s.smarts_construction_ids) > 0"),
        Some(_) => c.always("cardinality(s.esmr_place_ids) > 0"),
        None => &mut c,
    };
    c.holds(
        list::flag(q, "hasViolations")?,
        "s.events > 0 or s.smarts_violations > 0",
        None,
        "",
    )
    .holds(
        list::flag(q, "hasEnforcement")?,
        "s.enforcement_actions > 0",
        None,
        "",
    );
    match q.one_of("minLevel", LEVELS)? {
        Some("level_2") => c.always("s.level_2_since <= current_date"),
        Some(_) => c.always("s.level_1_since <= current_date"),
        None => &mut c,
    };
    // The triage window: one start date for all three questions.
    let start = window_start(q, today)?;
    let ongoing_from = i64::from(crate::violations::reporting_year(today)) - 1;
    c.holds(
        list::flag(q, "exceededInWindow")?,
        "s.last_exceedance_date >= ",
        Some(Arg::Date(start)),
        "",
    )
    .holds(
        list::flag(q, "ongoing")?,
        "s.last_exceedance_year >= ",
        Some(Arg::Int(ongoing_from)),
        "",
    )
    .holds(
        list::flag(q, "enforcedInWindow")?,
        "s.last_enforcement_date >= ",
        Some(Arg::Date(start)),
        "",
    )
    // A half-year starting in the window sampled fewer QSEs than the IGP asks for.
    .holds(
        list::flag(q, "fewerThanRequired")?,
        "exists (select 1 from unnest(s.sampling_shortfalls) d where d >= ",
        Some(Arg::Date(start)),
        ")",
    );
    // A page of one area (or of the whole state) is counted from the stored area counts.
    let (county, region) = (q.text("county")?, q.one_of("region", REGIONS)?);
    let area = c
        .is_empty()
        .then(|| (county.clone(), region.map(str::to_owned)));
    c.when("lower(s.county) = lower(", county.map(Arg::Text), ")")
        .when(
            "upper(s.region) = upper(",
            region.map(|r| Arg::Text(r.to_owned())),
            ")",
        );
    let window = json!({
        "windowStart": start,
        "today": today,
        "ongoingFromReportingYear": ongoing_from,
    });
    Ok(Filters { c, area, window })
}

/// A request's filters: the conditions on the summaries `s`, the area (county, region) when
/// the area is all they filter by, and the triage window they were read with.
struct Filters {
    c: Conditions,
    area: Option<(Option<String>, Option<String>)>,
    window: Value,
}

async fn respond(state: &ApiState, q: &Query) -> Result<Value, ApiError> {
    let today = chrono::Utc::now().date_naive();
    let Filters { c, area, window } = conditions(q, today)?;
    let limit = q.limit(50, 1000)?;
    // Every filter is on the summaries: the count needs no facility join, and an area's count
    // is stored.
    let total = match area {
        Some((county, region)) => {
            crate::repo::summary::area_count(&state.pool, county.as_deref(), region.as_deref())
                .await?
        }
        None => list::count(&state.pool, "facility_summary s", &c).await?,
    };
    let listing = list::Listing {
        route: "GET /api/facilities",
        item: ITEM,
        from: "facility_summary s",
        id: "s.facility_id",
        sort: SORTS.parse(q)?,
        conditions: &c,
        limit,
        known_total: Some(total),
    };
    let (data, page) = list::page(state, &listing, q).await?;
    Ok(json!({
        "data": data,
        "page": page,
        "meta": {
            "triage": window,
            "sampling": crate::domain::sampling::note(),
            "freshness": freshness(&state.pool).await?,
        },
    }))
}
