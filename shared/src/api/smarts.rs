//! The SMARTS regulatory records as published: `GET /api/smarts/violations`,
//! `/api/smarts/enforcement`, `/api/smarts/inspections` and `/api/smarts/facilities`.
//!
//! Current rows only (withdrawn rows are history). Each item carries its canonical
//! `facilityId` (through the facility link of its APP_ID|WDID) and its provenance (source line,
//! the run that last changed it). Newest loaded first; opaque cursor; `limit` ≤ 1000;
//! `format=csv`. Every list answers `stats` over the whole filtered set, not just the page.
//!
//! Stats and totals come from the list's stored cube (`repo::list_stats`, rebuilt with every
//! publication) while a request filters only by what the cube keeps (region, county and the
//! list's own categories); a request with any other filter (WDID, APP_ID, facility, an id, a
//! date range, a name) is counted live, through the table's indexes.

use super::list::{self, Arg, Conditions, HOT};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

const PERMIT_KINDS: &[&str] = &["industrial", "construction"];

/// The canonical facility of a row with `wdid` / `app_id` columns under alias `t`.
const FACILITY_ID: &str = "(select l.facility_id from facility_link l
      where l.source in ('smarts_industrial', 'smarts_construction') and l.status = 'linked'
        and l.source_key = coalesce(t.app_id, '') || '|' || coalesce(t.wdid, '') limit 1)";

/// A SMARTS list's filters: the conditions on its rows `t` and, while every filter given is
/// one its stored cube keeps, the same filters on the cube's rows `m`.
struct Filters {
    live: Conditions,
    stored: Option<Conditions>,
}

/// Where a SMARTS list's stats and total come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// The stored cube, while the filters are ones it keeps (what the endpoints do).
    Stored,
    /// The live count over the rows, whatever the filters (the tests compare the two).
    Live,
}

/// The SMARTS record lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Violations,
    Enforcement,
    Inspections,
    Facilities,
}

/// The body of `list` for the query `q`, its stats and total counted as `counting` says.
pub async fn body(
    state: &ApiState,
    list: List,
    q: Query,
    counting: Counting,
) -> Result<Value, ApiError> {
    match list {
        List::Violations => violations(state, q, counting).await,
        List::Enforcement => enforcement(state, q, counting).await,
        List::Inspections => inspections(state, q, counting).await,
        List::Facilities => facilities(state, q, counting).await,
    }
}

impl Filters {
    fn new(counting: Counting) -> Self {
        Self {
            live: Conditions::default(),
            stored: (counting == Counting::Stored).then(Conditions::default),
        }
    }

    /// A filter the cube keeps: `live` on the rows, `stored` on the cube.
    fn both(
        &mut self,
        live: &str,
        stored: &str,
        value: Option<Arg>,
        after: &'static str,
    ) -> &mut Self {
        if let Some(s) = &mut self.stored {
            s.when(stored, value.clone(), after);
        }
        self.live.when(live, value, after);
        self
    }

    /// A filter only the rows can answer: given, it sends the stats to the live query.
    fn live_only(&mut self, live: &str, value: Option<Arg>, after: &'static str) -> &mut Self {
        if value.is_some() {
            self.stored = None;
        }
        self.live.when(live, value, after);
        self
    }

    /// The request's `region` and `county`, on columns `region` and `county` of the rows (the
    /// cube keeps them upper- and lower-cased).
    fn area(&mut self, q: &Query, region: &str, county: &str) -> Result<&mut Self, ApiError> {
        Ok(self
            .both(
                &format!("upper({region}) = upper("),
                "m.region = upper(",
                q.text("region")?.map(Arg::Text),
                ")",
            )
            .both(
                &format!("lower({county}) = lower("),
                "m.county = lower(",
                q.text("county")?.map(Arg::Text),
                ")",
            ))
    }
}

/// Filters every SMARTS record list shares: current rows, WDID, APP_ID, region, county,
/// canonical facility.
fn common(q: &Query, counting: Counting) -> Result<Filters, ApiError> {
    let mut c = Filters::new(counting);
    c.live.always("t.withdrawn_run_id is null");
    c.live_only("t.wdid = ", q.text("wdid")?.map(Arg::Text), "")
        .live_only("t.app_id = ", q.text("appId")?.map(Arg::Text), "")
        .area(q, "t.regional_board", "t.place_county")?;
    // Through the (wdid, app_id) index: the facility's SMARTS keys, split.
    c.live_only(
        "(t.wdid, coalesce(t.app_id, '')) in (select split_part(l.source_key, '|', 2),
                 split_part(l.source_key, '|', 1) from facility_link l
           where l.status = 'linked' and l.source in ('smarts_industrial', 'smarts_construction')
             and l.facility_id = ",
        q.int("facilityId", 1..=i64::MAX)?.map(Arg::Int),
        ")",
    );
    Ok(c)
}

/// A list's `stats`: `expr` over rows `m` shaped as the rows of its cube `cube` (the values
/// its filters and stats read, and the count `n`). The stored path reads the cube's selected
/// rows; the live one the filtered records as `columns` (per record, what `repo::list_stats`
/// groups the cube by, with `1 as n`), so one expression answers both; `tests/summaries.rs`
/// holds the two per-record definitions equal.
struct Stats<'a> {
    columns: &'a str,
    cube: &'a str,
    expr: &'a str,
}

/// A page of `listing`, `stats` over the whole filtered set and `meta.freshness`: the body of
/// every SMARTS list. With stored stats, the page's total is the cube's count too.
async fn with_stats(
    state: &ApiState,
    mut listing: list::Listing<'_>,
    branches: &[&str],
    filters: &Filters,
    q: &Query,
    stats: Stats<'_>,
) -> Result<Value, ApiError> {
    let stats = match &filters.stored {
        Some(stored) => {
            let both = format!(
                "jsonb_build_object('stats', {}, 'total', (select coalesce(sum(n), 0)::bigint from m))",
                stats.expr
            );
            let mut v = list::aggregate(
                &state.pool,
                "m.*",
                &both,
                &format!("{} m", stats.cube),
                stored,
            )
            .await?;
            listing.known_total = v["total"].as_i64();
            v["stats"].take()
        }
        None => {
            list::aggregate(
                &state.pool,
                stats.columns,
                stats.expr,
                listing.from,
                listing.conditions,
            )
            .await?
        }
    };
    let (data, page) = list::merged_page(state, &listing, branches, q).await?;
    Ok(json!({
        "data": data, "page": page, "stats": stats,
        "meta": { "freshness": freshness(&state.pool).await? },
    }))
}

/// `sum(n)` of the cube rows `m` where `condition` holds, as a JSON integer.
fn count_where(condition: &str) -> String {
    format!("(select coalesce(sum(n), 0)::bigint from m where {condition})")
}

use list::SortField as F;

/// Sorts of `/api/smarts/violations`: newest occurrence first by default.
pub(crate) static VIOLATION_SORTS: list::Sorts = list::Sorts {
    fields: &[
        F::nullable("occurrenceDate", "t.occurrence_date", "date"),
        F::nullable("discoveryDate", "t.discovery_date", "date"),
        F::nullable("violationType", "t.violation_type", "text"),
        F::required("id", "t.id", "bigint"),
    ],
    default: "-occurrenceDate",
};

/// Sorts of `/api/smarts/enforcement`: newest issuance first by default.
pub(crate) static ENFORCEMENT_SORTS: list::Sorts = list::Sorts {
    fields: &[
        F::nullable("issuanceDate", "t.issuance_date", "date"),
        F::nullable("adoptionDate", "t.adoption_date", "date"),
        F::nullable("totalAssessment", "t.total_assessment", "numeric"),
        F::nullable("receivedAmount", "t.received_amount", "numeric"),
        F::nullable("balanceDue", "t.balance_due", "numeric"),
        F::required("id", "t.id", "bigint"),
    ],
    default: "-issuanceDate",
};

/// Sorts of `/api/smarts/inspections`: newest inspection first by default.
pub(crate) static INSPECTION_SORTS: list::Sorts = list::Sorts {
    fields: &[
        F::nullable("inspectionDate", "t.inspection_date", "date"),
        F::nullable("countOfViolations", "t.count_of_violations", "integer"),
        F::required("id", "t.id", "bigint"),
    ],
    default: "-inspectionDate",
};

/// The two record tables of `smarts_facility t`, each the view of one table, read in order
/// through that table's indexes and merged (`list::merged_page`).
const RECORD_BRANCHES: [&str; 2] = ["smarts_industrial_record t", "smarts_construction_record t"];

/// Sorts of `/api/smarts/facilities`: the newest NOI first by default.
pub(crate) static FACILITY_SORTS: list::Sorts = list::Sorts {
    fields: &[
        F::nullable("noiProcessedDate", "t.noi_processed_date", "date"),
        F::nullable("notEffectiveDate", "t.not_effective_date", "date"),
        F::nullable("name", "t.facility_name", "text"),
        F::required("id", "t.record_key", "bigint"),
    ],
    default: "-noiProcessedDate",
};

fn provenance(dataset: &str) -> String {
    format!(
        "'provenance', jsonb_build_object('dataset', '{dataset}', 'sourceLine', t.source_line,
             'changedInRun', t.changed_run_id)"
    )
}

fn place() -> &'static str {
    "'place', jsonb_build_object('name', t.place_name, 'address', t.place_address,
         'city', t.place_city, 'zip', t.place_zip, 'county', t.place_county,
         'latitude', t.place_latitude, 'longitude', t.place_longitude,
         'receivingWater', t.receiving_water_name)"
}

const VIOLATION_CSV: &[&str] = &[
    "id",
    "violationId",
    "facilityId",
    "wdid",
    "appId",
    "violationType",
    "violationSource",
    "serious",
    "priority",
    "occurrenceDate",
    "discoveryDate",
    "status",
    "linkedEnforcement",
    "description",
    "region",
    "place.name",
    "place.county",
    "provenance.sourceLine",
];

/// `GET /api/smarts/violations`: `violationId`, `wdid`, `appId`, `facilityId`, `violationType`, `status`,
/// `seriousOnly`, `region`, `county`, `dateFrom`/`dateTo` (occurrence date).
pub async fn handle_violations(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(
        state,
        &req,
        "smarts-violations",
        HOT,
        Some(VIOLATION_CSV),
        |q| violations(state, q, Counting::Stored),
    )
    .await
}

async fn violations(state: &ApiState, q: Query, counting: Counting) -> Result<Value, ApiError> {
    let mut c = common(&q, counting)?;
    let (from, to) = list::date_range(&q)?;
    c.live_only(
        "t.violation_id = ",
        q.text("violationId")?.map(Arg::Text),
        "",
    )
    .both(
        "t.violation_type = ",
        "m.violation_type = ",
        q.text("violationType")?.map(Arg::Text),
        "",
    )
    .both(
        "t.violation_status = ",
        "m.violation_status = ",
        q.one_of("status", &["Violation", "Potential", "Dismissed"])?
            .map(|s| Arg::Text(s.into())),
        "",
    )
    .both(
        "t.serious_violation is not distinct from ",
        "m.serious is not distinct from ",
        list::flag(&q, "seriousOnly")?.filter(|s| *s).map(Arg::Bool),
        "",
    )
    .live_only("t.occurrence_date >= ", from.map(Arg::Date), "")
    .live_only("t.occurrence_date <= ", to.map(Arg::Date), "");
    let limit = q.limit(50, 1000)?;
    let select = format!(
        "jsonb_build_object('id', t.id, 'violationId', t.violation_id,
             'facilityId', {FACILITY_ID}, 'wdid', t.wdid, 'appId', t.app_id,
             'violationType', t.violation_type, 'violationSource', t.violation_source,
             'violationSourceId', t.violation_source_id, 'serious', t.serious_violation,
             'priority', t.violation_priority, 'occurrenceDate', t.occurrence_date,
             'discoveryDate', t.discovery_date, 'determinedBy', t.determined_by,
             'exemptFromMmp', t.exempt_from_mmp, 'status', t.violation_status,
             'description', t.description, 'memo', t.memo,
             'linkedEnforcement', t.linked_enforcement_action,
             'enforcementIds', coalesce((select jsonb_agg(ev.enforcement_id order by ev.enforcement_id)
                 from smarts_enforcement_violation ev where ev.violation_id = t.violation_id), '[]'),
             'permitType', t.permit_type, 'region', t.regional_board,
             {place}, {prov})",
        place = place(),
        prov = provenance("smarts_violations"),
    );
    let from_sql = "smarts_violation t";
    let stats = format!(
        "jsonb_build_object('serious', {serious}, 'withEnforcement', {enforced},
             'byType', {by_type}, 'byStatus', {by_status})",
        serious = count_where("m.serious"),
        enforced = count_where("m.with_enforcement"),
        by_type = list::sums_by("m", "violation_type"),
        by_status = list::sums_by("m", "violation_status"),
    );
    let listing = list::Listing {
        route: "GET /api/smarts/violations",
        item: &select,
        from: from_sql,
        id: "t.id",
        sort: VIOLATION_SORTS.parse(&q)?,
        conditions: &c.live,
        limit,
        known_total: None,
    };
    let stats = Stats {
        columns: "t.serious_violation as serious,
             coalesce(t.linked_enforcement_action or exists (
                 select 1 from smarts_enforcement_violation ev
                  where ev.violation_id = t.violation_id), false) as with_enforcement,
             t.violation_type, t.violation_status, 1::bigint as n",
        cube: "smarts_violation_stats",
        expr: &stats,
    };
    with_stats(state, listing, &[], &c, &q, stats).await
}

const ENFORCEMENT_CSV: &[&str] = &[
    "id",
    "enforcementId",
    "facilityId",
    "wdid",
    "appId",
    "enforcementType",
    "status",
    "issuanceDate",
    "dueDate",
    "totalAssessment",
    "receivedAmount",
    "balanceDue",
    "countOfViolations",
    "description",
    "region",
    "place.name",
    "place.county",
    "provenance.sourceLine",
];

/// `GET /api/smarts/enforcement`: `enforcementId`, `wdid`, `appId`, `facilityId`, `enforcementType`, `status`,
/// `region`, `county`, `dateFrom`/`dateTo` (issuance date).
pub async fn handle_enforcement(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(
        state,
        &req,
        "smarts-enforcement",
        HOT,
        Some(ENFORCEMENT_CSV),
        |q| enforcement(state, q, Counting::Stored),
    )
    .await
}

async fn enforcement(state: &ApiState, q: Query, counting: Counting) -> Result<Value, ApiError> {
    let mut c = common(&q, counting)?;
    let (from, to) = list::date_range(&q)?;
    c.live_only(
        "t.enforcement_id = ",
        q.text("enforcementId")?.map(Arg::Text),
        "",
    )
    .both(
        "t.enforcement_type = ",
        "m.enforcement_type = ",
        q.text("enforcementType")?.map(Arg::Text),
        "",
    )
    .both(
        "lower(t.enforcement_status) = lower(",
        "lower(m.enforcement_status) = lower(",
        q.text("status")?.map(Arg::Text),
        ")",
    )
    .live_only("t.issuance_date >= ", from.map(Arg::Date), "")
    .live_only("t.issuance_date <= ", to.map(Arg::Date), "");
    let limit = q.limit(50, 1000)?;
    let select = format!(
        "jsonb_build_object('id', t.id, 'enforcementId', t.enforcement_id,
             'facilityId', {FACILITY_ID}, 'wdid', t.wdid, 'appId', t.app_id,
             'enforcementType', t.enforcement_type, 'status', t.enforcement_status,
             'issuanceDate', t.issuance_date, 'dueDate', t.due_date,
             'adoptionDate', t.adoption_date, 'complianceDate', t.compliance_date,
             'description', t.description, 'correctiveAction', t.corrective_action,
             'orderNumber', t.order_number,
             'economicBenefits', t.economic_benefits, 'totalMaxLiability', t.total_max_liability,
             'staffCosts', t.staff_costs, 'initialAssessment', t.initial_assessment,
             'totalAssessment', t.total_assessment, 'receivedAmount', t.received_amount,
             'receivedDate', t.received_date, 'spentAmount', t.spent_amount,
             'balanceDue', t.balance_due, 'countOfViolations', t.count_of_violations,
             'violations', coalesce((select jsonb_agg(jsonb_build_object('violationId', ev.violation_id,
                 'method', ev.method, 'confidence', ev.confidence, 'reason', ev.reason)
                 order by ev.violation_id)
                 from smarts_enforcement_violation ev where ev.enforcement_id = t.enforcement_id), '[]'),
             'permitType', t.permit_type, 'region', t.regional_board,
             {place}, {prov})",
        place = place(),
        prov = provenance("smarts_enforcement_actions"),
    );
    let from_sql = "smarts_enforcement_action t";
    let stats = format!(
        "jsonb_build_object('active', {active}, 'byType', {by_type}, 'byStatus', {by_status},
             'totalAssessed', (select coalesce(sum(m.total_assessment), 0) from m),
             'totalReceived', (select coalesce(sum(m.received_amount), 0) from m),
             'balanceDue', (select coalesce(sum(m.balance_due), 0) from m))",
        active = count_where("lower(m.enforcement_status) = 'active'"),
        by_type = list::sums_by("m", "enforcement_type"),
        by_status = list::sums_by("m", "enforcement_status"),
    );
    let listing = list::Listing {
        route: "GET /api/smarts/enforcement",
        item: &select,
        from: from_sql,
        id: "t.id",
        sort: ENFORCEMENT_SORTS.parse(&q)?,
        conditions: &c.live,
        limit,
        known_total: None,
    };
    let stats = Stats {
        columns: "t.enforcement_status, t.enforcement_type, t.total_assessment, \
                  t.received_amount, t.balance_due, 1::bigint as n",
        cube: "smarts_enforcement_stats",
        expr: &stats,
    };
    with_stats(state, listing, &[], &c, &q, stats).await
}

const INSPECTION_CSV: &[&str] = &[
    "id",
    "inspectionId",
    "facilityId",
    "wdid",
    "appId",
    "inspectionDate",
    "purpose",
    "classification",
    "status",
    "inspectorType",
    "agencyName",
    "countOfViolations",
    "followUpAction",
    "region",
    "place.name",
    "place.county",
    "provenance.sourceLine",
];

/// `GET /api/smarts/inspections`: `inspectionId`, `wdid`, `appId`, `facilityId`, `purpose`, `region`, `county`,
/// `dateFrom`/`dateTo` (inspection date); each inspection with the violations linked to it.
pub async fn handle_inspections(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(
        state,
        &req,
        "smarts-inspections",
        HOT,
        Some(INSPECTION_CSV),
        |q| inspections(state, q, Counting::Stored),
    )
    .await
}

async fn inspections(state: &ApiState, q: Query, counting: Counting) -> Result<Value, ApiError> {
    let mut c = common(&q, counting)?;
    let (from, to) = list::date_range(&q)?;
    c.live_only(
        "t.inspection_id = ",
        q.text("inspectionId")?.map(Arg::Text),
        "",
    )
    .both(
        "lower(t.inspection_purpose) = lower(",
        "lower(m.inspection_purpose) = lower(",
        q.text("purpose")?.map(Arg::Text),
        ")",
    )
    .live_only("t.inspection_date >= ", from.map(Arg::Date), "")
    .live_only("t.inspection_date <= ", to.map(Arg::Date), "");
    let limit = q.limit(50, 1000)?;
    let select = format!(
        "jsonb_build_object('id', t.id, 'inspectionId', t.inspection_id,
             'facilityId', {FACILITY_ID}, 'wdid', t.wdid, 'appId', t.app_id,
             'inspectionDate', t.inspection_date, 'startTime', t.inspection_start_time,
             'endTime', t.inspection_end_time, 'purpose', t.inspection_purpose,
             'classification', t.inspection_classification, 'status', t.inspection_status,
             'contact', t.inspection_contact, 'inspectorType', t.inspector_type,
             'inspectorName', t.inspector_name, 'agencyName', t.agency_name,
             'followUpAction', t.follow_up_action, 'notes', t.general_notes,
             'virtual', t.virtual_inspection, 'countOfViolations', t.count_of_violations,
             'violations', coalesce((select jsonb_agg(jsonb_build_object('id', v.id,
                 'violationId', v.violation_id, 'violationType', v.violation_type,
                 'status', v.violation_status, 'serious', v.serious_violation,
                 'occurrenceDate', v.occurrence_date) order by v.violation_id, v.id)
                 from smarts_inspection_violation iv
                 join smarts_violation v on v.violation_id = iv.violation_id and v.withdrawn_run_id is null
                 where iv.inspection_id = t.inspection_id), '[]'),
             'permitType', t.permit_type, 'region', t.regional_board,
             {place}, {prov})",
        place = place(),
        prov = provenance("smarts_inspections"),
    );
    let from_sql = "smarts_inspection t";
    let stats = format!(
        "jsonb_build_object('withViolations', {with}, 'byPurpose', {by_purpose})",
        with = count_where("m.with_violations"),
        by_purpose = list::sums_by("m", "inspection_purpose"),
    );
    let listing = list::Listing {
        route: "GET /api/smarts/inspections",
        item: &select,
        from: from_sql,
        id: "t.id",
        sort: INSPECTION_SORTS.parse(&q)?,
        conditions: &c.live,
        limit,
        known_total: None,
    };
    let stats = Stats {
        columns: "t.inspection_purpose, exists (select 1 from smarts_inspection_violation iv
                     where iv.inspection_id = t.inspection_id) as with_violations, 1::bigint as n",
        cube: "smarts_inspection_stats",
        expr: &stats,
    };
    with_stats(state, listing, &[], &c, &q, stats).await
}

const FACILITY_CSV: &[&str] = &[
    "id",
    "kind",
    "facilityId",
    "wdid",
    "appId",
    "name",
    "operator",
    "status",
    "permitType",
    "region",
    "county",
    "city",
    "latitude",
    "longitude",
];

/// `GET /api/smarts/facilities`: industrial and construction application records together
/// (`kind`), filtered by `kind`, `wdid`, `appId`, `status`, `region`, `county`, `q` (name).
/// Ids are `industrial:<n>` / `construction:<n>` (the two source tables).
pub async fn handle_facilities(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(
        state,
        &req,
        "smarts-facilities",
        HOT,
        Some(FACILITY_CSV),
        |q| facilities(state, q, Counting::Stored),
    )
    .await
}

async fn facilities(state: &ApiState, q: Query, counting: Counting) -> Result<Value, ApiError> {
    let mut c = Filters::new(counting);
    c.both(
        "t.kind = ",
        "m.kind = ",
        q.one_of("kind", PERMIT_KINDS)?.map(|k| Arg::Text(k.into())),
        "",
    )
    .live_only("t.wdid = ", q.text("wdid")?.map(Arg::Text), "")
    .live_only("t.app_id = ", q.text("appId")?.map(Arg::Text), "")
    .both(
        "lower(t.status) = lower(",
        "lower(m.status) = lower(",
        q.text("status")?.map(Arg::Text),
        ")",
    )
    .area(&q, "t.region", "t.county")?
    .live_only(
        "t.facility_name ilike '%' || ",
        q.text("q")?
            .map(|s| Arg::Text(crate::repo::facilities::like_escape(&s))),
        " || '%'",
    );
    let limit = q.limit(50, 1000)?;
    let select = "jsonb_build_object('id', t.kind || ':' || t.source_id, 'kind', t.kind,
             'facilityId', (select l.facility_id from facility_link l
                 where l.source = 'smarts_' || t.kind and l.source_key = t.source_key
                   and l.status = 'linked'),
             'wdid', t.wdid, 'appId', t.app_id, 'name', t.facility_name,
             'operator', t.operator_name, 'status', t.status, 'permitType', t.permit_type,
             'region', t.region, 'county', t.county, 'address', t.address, 'city', t.city,
             'zip', t.zip, 'latitude', t.latitude, 'longitude', t.longitude,
             'noiProcessedDate', t.noi_processed_date, 'notEffectiveDate', t.not_effective_date,
             'receivingWater', t.receiving_water_name,
             'provenance', jsonb_build_object('dataset', 'smarts_' || t.kind || '_facilities',
                 'changedInRun', t.changed_run_id))";
    let stats = format!(
        "jsonb_build_object('byKind', {by_kind}, 'byStatus', {by_status})",
        by_kind = list::sums_by("m", "kind"),
        by_status = list::sums_by("m", "status"),
    );
    let listing = list::Listing {
        route: "GET /api/smarts/facilities",
        item: select,
        from: "smarts_facility t",
        id: "t.record_key",
        sort: FACILITY_SORTS.parse(&q)?,
        conditions: &c.live,
        limit,
        known_total: None,
    };
    let stats = Stats {
        columns: "t.kind, t.status, 1::bigint as n",
        cube: "smarts_facility_stats",
        expr: &stats,
    };
    with_stats(state, listing, &RECORD_BRANCHES, &c, &q, stats).await
}
