//! One canonical facility: `GET /api/facilities/{id}` (profile), `/complete` (everything
//! both programs know about it) and `/timeline` (one dated feed).
//!
//! A canonical facility gathers source records through `facility_link` (status `linked`):
//! SMARTS records by `APP_ID|WDID`, eSMR facilities by CIWQS place id. Everything below is
//! reached through those links, so what a facility shows is exactly what its links say.

use super::list::{self, WARM};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query, path_id};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

const PREFIX: &str = "/api/facilities/";

/// CTEs over `$1` (the facility id): `keys` (its SMARTS WDID / APP_ID pairs) and `places`
/// (its eSMR place ids).
pub(crate) const LINKED: &str = "keys as (select split_part(l.source_key, '|', 2) as wdid,
                                    split_part(l.source_key, '|', 1) as app_id, l.source
                               from facility_link l
                              where l.facility_id = $1 and l.status = 'linked'
                                and l.source in ('smarts_industrial', 'smarts_construction')),
       places as (select l.source_key as place_id from facility_link l
                   where l.facility_id = $1 and l.status = 'linked' and l.source = 'esmr')";

/// Rows of a SMARTS table `t` that belong to the facility (current rows only).
pub(crate) fn mine(table: &str) -> String {
    format!(
        "{table} t join keys k on t.wdid = k.wdid and coalesce(t.app_id, '') = k.app_id
         where t.withdrawn_run_id is null"
    )
}

/// The profile object (also the head of `/complete`).
fn profile_sql() -> String {
    format!(
        "jsonb_build_object(
           'id', f.id, 'name', f.name, 'address', f.address, 'city', f.city,
           'county', f.county, 'region', f.region, 'zip', f.zip, 'primarySic', f.primary_sic,
           'location', case when f.latitude is null then null else jsonb_build_object(
               'latitude', f.latitude, 'longitude', f.longitude,
               'trusted', f.coordinates_trusted) end,
           'links', coalesce((select jsonb_agg(jsonb_build_object('source', l.source,
                'sourceKey', l.source_key, 'method', l.method, 'confidence', l.confidence,
                'status', l.status, 'verifiedBy', l.verified_by, 'verifiedAt', l.verified_at)
                order by l.source, l.source_key)
              from facility_link l where l.facility_id = f.id and l.status <> 'rejected'), '[]'),
           'sources', jsonb_build_object(
               'smartsIndustrial', exists (select 1 from keys where source = 'smarts_industrial'),
               'smartsConstruction', exists (select 1 from keys where source = 'smarts_construction'),
               'esmr', exists (select 1 from places)),
           'counts', jsonb_build_object(
               'violationEvents', (select count(*) from violation_event e
                                    where e.facility_id = f.id and e.retracted_at is null),
               'openViolationEvents', (select count(*) from violation_event e
                                        where e.facility_id = f.id and e.retracted_at is null
                                          and e.status in ('open', 'under_review')),
               'smartsViolations', (select count(*) from {v}),
               'enforcementActions', (select count(*) from {a}),
               'inspections', (select count(*) from {i})),
           'nalLevel', coalesce((select max(l.level) from nal_level_current l
                                  where l.facility_id = f.id), 'baseline'),
           'createdAt', f.created_at, 'updatedAt', f.updated_at)",
        v = mine("smarts_violation"),
        a = mine("smarts_enforcement_action"),
        i = mine("smarts_inspection"),
    )
}

/// `GET /api/facilities/{id}`.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let id = path_id(&req);
    list::respond(state, &req, "facility", WARM, None, |_q| async move {
        let id = id?;
        not_merged(state, id, &path).await?;
        let sql = format!(
            "with {LINKED} select {profile} from facility f where f.id = $1",
            profile = profile_sql()
        );
        let data = one(state, &sql, id).await?;
        Ok(json!({ "data": data, "meta": { "freshness": freshness(&state.pool).await? } }))
    })
    .await
}

/// A 308 to the canonical facility when `id` was merged into another (`facility.merged_into`),
/// keeping the rest of the path (`/complete`, `/timeline`).
pub(crate) async fn not_merged(state: &ApiState, id: i64, path: &str) -> Result<(), ApiError> {
    // The linker sets merged_into to the facility the record is linked to, which is always a
    // canonical one: one lookup, never a chain.
    let target: Option<i64> = sqlx::query_scalar!(
        r#"select merged_into as "v!" from facility where id = $1 and merged_into is not null"#,
        id
    )
    .fetch_optional(&state.pool)
    .await?;
    match target {
        None => Ok(()),
        Some(t) => {
            let rest = path
                .strip_prefix(PREFIX)
                .and_then(|r| r.find('/').map(|i| &r[i..]))
                .unwrap_or("");
            Err(ApiError::Moved {
                message: format!("facility {id} is the same site as facility {t}, merged into it"),
                location: format!("{PREFIX}{t}{rest}"),
            })
        }
    }
}

async fn one(state: &ApiState, sql: &str, id: i64) -> Result<Value, ApiError> {
    // Runtime SQL: the profile and complete statements are built from the linked-record CTE and per-table counts.
    sqlx::query_scalar::<_, Value>(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no facility {id}")))
}

/// How many items of each list `/complete` embeds; `truncated` says when there are more (the
/// list endpoints filtered by `facilityId` page through all of them).
const EMBED: i64 = 500;

/// `GET /api/facilities/{id}/complete`: profile, eSMR part, SMARTS part, computed exceedance
/// events, SMARTS violations, enforcement (with penalties), inspections, monitoring summary,
/// NAL statistics and ERA Levels.
pub async fn handle_complete(state: &ApiState, req: Request) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let id = path_id(&req);
    list::respond(
        state,
        &req,
        "facility-complete",
        WARM,
        None,
        |_q| async move {
            let id = id?;
            not_merged(state, id, &path).await?;
            let data = one(state, &complete_sql(), id).await?;
            Ok(json!({ "data": data, "meta": {
                "sampling": crate::domain::sampling::note(),
                "freshness": freshness(&state.pool).await?,
            } }))
        },
    )
    .await
}

fn embedded(items: &str, from: &str, order: &str) -> String {
    format!(
        "(select jsonb_build_object('items', coalesce(jsonb_agg(x.item order by x.o desc), '[]'),
                 'total', (select count(*) from {from}), 'truncated', (select count(*) from {from}) > {EMBED})
            from (select {items} as item, {order} as o from {from} order by {order} desc limit {EMBED}) x)"
    )
}

fn complete_sql() -> String {
    let events = embedded(
        "jsonb_build_object('id', e.id, 'source', e.source, 'pollutant', e.pollutant_key,
             'reportingYear', e.reporting_year, 'benchmarkType', e.benchmark_type,
             'measure', e.measure, 'value', e.value, 'unit', e.unit, 'maxRatio', e.max_ratio,
             'severity', e.severity, 'status', e.status, 'sampleCount', e.sample_count,
             'firstDate', e.first_date, 'lastDate', e.last_date, 'screening', e.screening,
             'unverified', e.unverified)",
        "violation_event e where e.facility_id = f.id and e.retracted_at is null",
        "e.id",
    );
    let violations = embedded(
        "jsonb_build_object('id', t.id, 'violationId', t.violation_id, 'wdid', t.wdid,
             'appId', t.app_id, 'violationType', t.violation_type, 'source', t.violation_source,
             'serious', t.serious_violation, 'priority', t.violation_priority,
             'occurrenceDate', t.occurrence_date, 'discoveryDate', t.discovery_date,
             'status', t.violation_status, 'description', t.description,
             'linkedEnforcement', t.linked_enforcement_action, 'sourceLine', t.source_line)",
        &mine("smarts_violation"),
        "t.id",
    );
    let enforcement = embedded(
        "jsonb_build_object('id', t.id, 'enforcementId', t.enforcement_id,
             'enforcementType', t.enforcement_type, 'status', t.enforcement_status,
             'issuanceDate', t.issuance_date, 'adoptionDate', t.adoption_date,
             'totalAssessment', t.total_assessment, 'receivedAmount', t.received_amount,
             'balanceDue', t.balance_due, 'description', t.description,
             'violationIds', coalesce((select jsonb_agg(ev.violation_id order by ev.violation_id)
                 from smarts_enforcement_violation ev where ev.enforcement_id = t.enforcement_id), '[]'),
             'sourceLine', t.source_line)",
        &mine("smarts_enforcement_action"),
        "t.id",
    );
    let inspections = embedded(
        "jsonb_build_object('id', t.id, 'inspectionId', t.inspection_id,
             'inspectionDate', t.inspection_date, 'purpose', t.inspection_purpose,
             'status', t.inspection_status, 'inspectorType', t.inspector_type,
             'agencyName', t.agency_name, 'countOfViolations', t.count_of_violations,
             'violationIds', coalesce((select jsonb_agg(iv.violation_id order by iv.violation_id)
                 from smarts_inspection_violation iv where iv.inspection_id = t.inspection_id), '[]'),
             'sourceLine', t.source_line)",
        &mine("smarts_inspection"),
        "t.id",
    );
    format!(
        "with {LINKED}
         select {profile} || jsonb_build_object(
           'permitIds', jsonb_build_object(
               'wdids', coalesce((select jsonb_agg(distinct k.wdid) from keys k where k.wdid <> ''), '[]'),
               'appIds', coalesce((select jsonb_agg(distinct k.app_id) from keys k where k.app_id <> ''), '[]'),
               'esmrPlaceIds', coalesce((select jsonb_agg(p.place_id order by p.place_id) from places p), '[]')),
           'smarts', jsonb_build_object(
               'records', coalesce((select jsonb_agg(jsonb_build_object('kind', s.kind,
                   'id', s.kind || ':' || s.source_id, 'wdid', s.wdid, 'appId', s.app_id,
                   'name', s.facility_name, 'operator', s.operator_name, 'status', s.status,
                   'permitType', s.permit_type, 'noiProcessedDate', s.noi_processed_date,
                   'notEffectiveDate', s.not_effective_date, 'receivingWater', s.receiving_water_name,
                   'site', case s.kind when 'construction' then (
                       select jsonb_build_object('totalSize', c.site_total_size,
                           'totalSizeUnit', c.site_total_size_unit,
                           'disturbedAcreage', c.site_total_disturbed_acreage,
                           'disturbedAcreageUnit', c.total_disturbed_acreage_unit,
                           'typeOfConstruction', c.type_of_construction,
                           'constructionTypes', to_jsonb(array_remove(array[
                               case when c.construction_residential then 'residential' end,
                               case when c.construction_commertial then 'commercial' end,
                               case when c.construction_industrial then 'industrial' end,
                               case when c.construction_reconstruction then 'reconstruction' end,
                               case when c.construction_transportation then 'transportation' end,
                               case when c.type_of_construction_utility then 'utility' end,
                               case when c.construction_other then 'other' end], null)),
                           'otherDescription', c.construction_other_desription,
                           'commencementDate', c.construction_commencement_date,
                           'completeGradingDate', c.complete_grading_date,
                           'completeProjectDate', c.complete_project_date,
                           'riskLevel', c.project_combined_risk)
                         from smarts_construction_facility c where c.id = s.source_id)
                     else (select jsonb_build_object('totalSize', i.facility_total_size,
                           'totalSizeUnit', i.facility_total_size_unit,
                           'activityArea', i.facility_area_activity,
                           'activityAreaUnit', i.facility_area_activity_unit,
                           'percentImpervious', i.percent_of_site_imperviousness,
                           'primarySic', i.primary_sic)
                         from smarts_industrial_facility i where i.id = s.source_id) end)
                   order by s.kind, s.source_id)
                 from keys k cross join lateral (select * from smarts_facility s
                       where s.wdid = k.wdid and coalesce(s.app_id, '') = k.app_id
                         and 'smarts_' || s.kind = k.source
                       -- a fence: one index probe per key, never a scan of the whole view
                       offset 0) s), '[]'),
               'violations', {violations},
               'enforcement', {enforcement} || jsonb_build_object(
                   'totalAssessed', (select coalesce(sum(t.total_assessment), 0) from {a}),
                   'totalReceived', (select coalesce(sum(t.received_amount), 0) from {a}),
                   -- Active: the status SMARTS publishes; historical: every other action.
                   'active', (select count(*) from {a} and lower(t.enforcement_status) = 'active'),
                   'historical', (select count(*) from {a}
                                   and lower(t.enforcement_status) is distinct from 'active'),
                   'lastIssuanceDate', (select max(t.issuance_date) from {a})),
               'inspections', {inspections} || jsonb_build_object(
                   'lastInspectionDate', (select max(t.inspection_date) from {i})),
               'monitoring', (select jsonb_build_object(
                   'results', count(*), 'reports', count(distinct t.report_id),
                   'firstSampleDate', min(t.sample_date), 'lastSampleDate', max(t.sample_date),
                   'nonDetects', count(*) filter (where t.result_qualifier = 'ND'),
                   'byParameter', coalesce((select jsonb_object_agg(p.parameter, jsonb_build_object(
                        'results', p.n, 'firstSampleDate', p.first, 'lastSampleDate', p.last))
                      from (select coalesce(t.parameter, 'unknown') as parameter, count(*) n,
                                   min(t.sample_date) first, max(t.sample_date) last
                              from {m} group by 1) p), '{{}}'))
                 from {m}),
               'constructionMonitoring', (select jsonb_build_object(
                   'results', count(*), 'reports', count(distinct t.report_id),
                   'events', count(distinct (t.event_type, t.event_start_date))
                       filter (where t.event_type is not null or t.event_start_date is not null),
                   'firstSampleDate', min(t.sample_date), 'lastSampleDate', max(t.sample_date),
                   'nonDetects', count(*) filter (where t.result_qualifier = 'ND'),
                   'byEventType', coalesce((select jsonb_object_agg(x.k, x.n)
                      from (select coalesce(t.event_type, 'unknown') as k,
                                   count(distinct (t.event_type, t.event_start_date)) n
                              from {cm} group by 1) x), '{{}}'),
                   'byParameter', coalesce((select jsonb_object_agg(p.parameter, jsonb_build_object(
                        'results', p.n, 'firstSampleDate', p.first, 'lastSampleDate', p.last))
                      from (select coalesce(t.parameter, 'unknown') as parameter, count(*) n,
                                   min(t.sample_date) first, max(t.sample_date) last
                              from {cm} group by 1) p), '{{}}'))
                 from {cm})),
           'esmr', jsonb_build_object(
               'facilities', coalesce((select jsonb_agg(jsonb_build_object('placeId', ef.facility_place_id,
                   'name', ef.facility_name, 'region', ef.region_code,
                   'receivingWater', ef.receiving_water_body,
                   'locations', (select count(*) from esmr_location el
                                  where el.facility_place_id = ef.facility_place_id))
                   order by ef.facility_place_id)
                 from esmr_facility ef join places p on p.place_id = ef.facility_place_id), '[]'),
               -- Each monitoring location with the latest result of every parameter measured
               -- there (ties on the date: the latest published row).
               'locations', coalesce((select jsonb_agg(jsonb_build_object(
                   'placeId', el.facility_place_id, 'locationPlaceId', el.location_place_id,
                   'location', el.location, 'type', el.location_place_type,
                   'latitude', el.latitude, 'longitude', el.longitude,
                   'description', el.location_desc, 'lastSampleDate', r.last,
                   'recentResults', coalesce(r.results, '[]'))
                   order by el.facility_place_id, el.location, el.location_place_id)
                 from esmr_location el join places p on p.place_id = el.facility_place_id
                 left join (select x.location_place_id, max(x.sampling_date) as last,
                                   jsonb_agg(jsonb_build_object('parameter', x.parameter,
                                       'date', x.sampling_date, 'time', x.sampling_time,
                                       'qualifier', x.qualifier, 'result', x.result,
                                       'units', x.units, 'calculatedMethod', x.calculated_method,
                                       'sourceLine', x.source_line)
                                       order by x.parameter) as results
                              from (select distinct on (s.location_place_id, s.parameter) s.*
                                      from esmr_sample s join places p on p.place_id = s.facility_place_id
                                     where s.withdrawn_run_id is null
                                     order by s.location_place_id, s.parameter,
                                              s.sampling_date desc nulls last,
                                              s.sampling_time desc nulls last, s.id desc) x
                             group by 1) r on r.location_place_id = el.location_place_id), '[]'),
               'monitoring', (select jsonb_build_object('results', count(*),
                   'firstSampleDate', min(s.sampling_date), 'lastSampleDate', max(s.sampling_date),
                   'parameters', count(distinct s.parameter_id))
                 from esmr_sample s join places p on p.place_id = s.facility_place_id
                 where s.withdrawn_run_id is null)),
           -- Monitoring completeness per judged half-year (docs/SAMPLING.md).
           'sampling', jsonb_build_object(
               'halfYears', coalesce((select jsonb_agg(jsonb_build_object(
                   'reportingYear', extract(year from h.half_start - interval '6 months')::integer,
                   'half', case when extract(month from h.half_start) = 7 then 'Jul-Dec' else 'Jan-Jun' end,
                   'from', h.half_start, 'to', h.half_end,
                   'sampledEvents', h.sampled_events, 'eventDates', h.event_dates,
                   'required', {required},
                   'fewerThanRequired', h.sampled_events < {required}) order by h.half_start)
                 from igp_sampling_halves(array[f.id]) h), '[]')),
           'violationEvents', {events},
           'nal', jsonb_build_object(
               'levels', coalesce((select jsonb_agg(jsonb_build_object('pollutant', l.pollutant_key,
                   'level', l.level, 'level1Since', l.level_1_since, 'level2Since', l.level_2_since,
                   'exceedanceYears', l.exceedance_years) order by l.pollutant_key)
                 from nal_level_current l where l.facility_id = f.id), '[]'),
               'annual', coalesce((select jsonb_agg(jsonb_build_object('pollutant', n.pollutant_key,
                   'reportingYear', n.reporting_year, 'nal', n.nal, 'average', n.average,
                   'ndPolicy', n.nd_policy, 'sampleCount', n.sample_count, 'ndCount', n.nd_count,
                   'exceeds', n.exceeds, 'policySensitive', n.policy_sensitive,
                   'instantCount', n.instant_count) order by n.pollutant_key, n.reporting_year)
                 from nal_annual n where n.facility_id = f.id), '[]')))
         from facility f where f.id = $1",
        profile = profile_sql(),
        a = mine("smarts_enforcement_action"),
        i = mine("smarts_inspection"),
        m = mine("smarts_industrial_monitoring"),
        cm = mine("smarts_construction_monitoring"),
        required = crate::domain::sampling::REQUIRED_PER_HALF,
    )
}

const KINDS: &[&str] = &[
    "exceedance",
    "violation",
    "inspection",
    "enforcement",
    "penalty",
];

/// The timeline's order: newest first by default, `sort=date` for oldest first (ties by kind,
/// then id, in the same direction).
pub static TIMELINE_SORTS: list::Sorts = list::Sorts {
    fields: &[list::SortField::required("date", "date", "date")],
    default: "-date",
};

/// `GET /api/facilities/{id}/timeline`: exceedance events, SMARTS violations, inspections,
/// enforcement actions and penalties in one feed, newest first (`kind` filters, `dateFrom` /
/// `dateTo`, cursor, `limit` ≤ 1000). Undated records cannot be placed and are counted in
/// `meta.undated`.
pub async fn handle_timeline(state: &ApiState, req: Request) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let id = path_id(&req);
    list::respond(
        state,
        &req,
        "facility-timeline",
        WARM,
        None,
        |q| async move {
            let id = id?;
            not_merged(state, id, &path).await?;
            timeline(state, id, &q).await
        },
    )
    .await
}

async fn timeline(state: &ApiState, id: i64, q: &Query) -> Result<Value, ApiError> {
    let kind = q.one_of("kind", KINDS)?;
    let (from, to) = list::date_range(q)?;
    let limit = q.limit(100, 1000)?;
    let sort = TIMELINE_SORTS.parse(q)?;
    let (cmp, dir) = if sort.descending {
        ("<", "desc")
    } else {
        (">", "asc")
    };
    // One facility's feed in one order: a cursor of another facility's timeline, or of
    // another sort, is refused too.
    let cursors = state
        .cursors(format!(
            "GET /api/facilities/{id}/timeline by date, kind, id sorted by {}",
            sort.name()
        ))
        .await?;
    let after = match cursors.after_text(q)? {
        None => None,
        Some(t) => Some(
            (|| {
                let mut parts = t.splitn(3, '|');
                let date = chrono::NaiveDate::parse_from_str(parts.next()?, "%Y-%m-%d").ok()?;
                let kind = parts.next()?.to_owned();
                let id = parts.next()?.parse::<i64>().ok()?;
                Some((date, kind, id))
            })()
            .ok_or_else(|| ApiError::bad("cursor", "not a cursor from a previous page"))?,
        ),
    };
    let exists: bool = sqlx::query_scalar!(
        r#"select exists (select 1 from facility where id = $1) as "v!""#,
        id
    )
    .fetch_one(&state.pool)
    .await?;
    if !exists {
        return Err(ApiError::NotFound(format!("no facility {id}")));
    }
    let sql = format!(
        "with {LINKED}, feed as (
           select e.first_date as date, 'exceedance' as kind, e.id,
                  jsonb_build_object('pollutant', e.pollutant_key, 'reportingYear', e.reporting_year,
                      'benchmarkType', e.benchmark_type, 'source', e.source, 'value', e.value,
                      'unit', e.unit, 'maxRatio', e.max_ratio, 'severity', e.severity,
                      'status', e.status, 'sampleCount', e.sample_count, 'lastDate', e.last_date) as detail
             from violation_event e where e.facility_id = $1 and e.retracted_at is null
           union all
           select coalesce(t.occurrence_date, t.discovery_date), 'violation', t.id,
                  jsonb_build_object('violationId', t.violation_id, 'violationType', t.violation_type,
                      'serious', t.serious_violation, 'status', t.violation_status,
                      'description', t.description, 'source', t.violation_source)
             from {v}
           union all
           select t.inspection_date, 'inspection', t.id,
                  jsonb_build_object('inspectionId', t.inspection_id, 'purpose', t.inspection_purpose,
                      'status', t.inspection_status, 'countOfViolations', t.count_of_violations)
             from {i}
           union all
           select t.issuance_date, 'enforcement', t.id,
                  jsonb_build_object('enforcementId', t.enforcement_id, 'enforcementType', t.enforcement_type,
                      'status', t.enforcement_status, 'description', t.description)
             from {a}
           union all
           select coalesce(t.adoption_date, t.issuance_date), 'penalty', t.id,
                  jsonb_build_object('enforcementId', t.enforcement_id, 'enforcementType', t.enforcement_type,
                      'totalAssessment', t.total_assessment, 'receivedAmount', t.received_amount,
                      'receivedDate', t.received_date, 'balanceDue', t.balance_due)
             from {a} and t.total_assessment > 0)
         select coalesce(jsonb_agg(jsonb_build_object('date', x.date, 'kind', x.kind, 'id', x.id,
                    'detail', x.detail) order by x.date {dir}, x.kind {dir}, x.id {dir}), '[]'),
                (select count(*) from feed where date is null)
           from (select * from feed
                  where date is not null
                    and ($2::text is null or kind = $2)
                    and ($3::date is null or date >= $3)
                    and ($4::date is null or date <= $4)
                    and ($5::date is null or (date, kind, id) {cmp} ($5, $6, $7))
                  order by date {dir}, kind {dir}, id {dir} limit $8) x",
        v = mine("smarts_violation"),
        i = mine("smarts_inspection"),
        a = mine("smarts_enforcement_action"),
    );
    // Runtime SQL: the timeline is a union built from one part per source table.
    let (items, undated): (Value, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(kind)
        .bind(from)
        .bind(to)
        .bind(after.as_ref().map(|a| a.0))
        .bind(after.as_ref().map(|a| a.1.clone()))
        .bind(after.as_ref().map(|a| a.2))
        .bind(limit)
        .fetch_one(&state.pool)
        .await?;
    let next = items
        .as_array()
        .filter(|a| a.len() as i64 == limit)
        .and_then(|a| a.last())
        .map(|last| {
            cursors.encode_text(&format!(
                "{}|{}|{}",
                last["date"].as_str().unwrap_or_default(),
                last["kind"].as_str().unwrap_or_default(),
                last["id"]
            ))
        });
    Ok(json!({
        "data": items,
        "page": { "limit": limit, "sort": sort.name(), "nextCursor": next },
        "meta": { "facilityId": id, "undated": undated, "freshness": freshness(&state.pool).await? },
    }))
}
