//! Violation events: `GET /api/violations/{id}` (the drilldown: event, benchmark, every sample
//! with its source row, the NAL statistics, the Level, the review history, duplicate candidates)
//! and `PATCH /api/violations/{id}/status` (the review workflow; credentials required).

use super::{ApiState, freshness};
use crate::http::{ApiError, json_body, json_response, path_id};
use crate::violations::review::{self, ReviewError, Status};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// `GET /api/violations/{id}`: cached per sync generation like the lists (a review action
/// starts a new generation, so a changed status is never served stale).
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    let id = path_id(&req);
    super::list::respond(state, &req, "violation", DETAIL, None, |_| async move {
        detail(state, id?).await
    })
    .await
}

/// `Cache-Control` of an event's drilldown: a minute (its status can change by review).
const DETAIL: &str = "public, max-age=60";

/// The event with everything needed to check it by hand.
pub async fn detail(state: &ApiState, id: i64) -> Result<Value, ApiError> {
    let event: Option<Value> = sqlx::query_scalar!(
        r#"select jsonb_build_object(
             'id', e.id, 'status', e.status, 'statusChangedBy', e.status_changed_by,
             'statusChangedAt', e.status_changed_at, 'statusNotes', e.status_notes,
             'facility', jsonb_build_object('id', f.id, 'name', f.name, 'county', f.county,
                                            'region', f.region, 'latitude', f.latitude,
                                            'longitude', f.longitude),
             'pollutant', e.pollutant_key, 'pollutantName', p.name,
             'reportingYear', e.reporting_year,
             'reportingPeriod', jsonb_build_object('from', make_date(e.reporting_year, 7, 1),
                                                   'to', make_date(e.reporting_year + 1, 6, 30)),
             'source', e.source, 'benchmarkType', e.benchmark_type, 'measure', e.measure,
             'value', e.value, 'unit', e.unit, 'maxRatio', e.max_ratio, 'severity', e.severity,
             'sampleCount', e.sample_count, 'exceedanceCount', e.exceedance_count,
             'firstDate', e.first_date, 'lastDate', e.last_date,
             'ndPolicy', e.nd_policy, 'policySensitive', e.policy_sensitive,
             'screening', e.screening, 'unverified', e.unverified,
             'detectedAt', e.detected_at, 'escalatedAt', e.escalated_at,
             'retractedAt', e.retracted_at,
             'benchmark', jsonb_build_object('id', b.id, 'type', b.benchmark_type,
                 'waterType', b.water_type, 'fraction', b.fraction, 'value', b.value,
                 'valueMax', b.value_max, 'unit', b.unit, 'source', b.source,
                 'sourceUrl', b.source_url, 'verification', b.verification,
                 'unverified', b.unverified, 'hardnessDependent', b.hardness_dependent),
             'level', (select jsonb_build_object('level', l.level, 'level1Since', l.level_1_since,
                                                 'level2Since', l.level_2_since,
                                                 'exceedanceYears', l.exceedance_years)
                       from nal_level_current l
                       where l.facility_id = e.facility_id and l.pollutant_key = e.pollutant_key),
             'annual', (select jsonb_build_object('nal', a.nal, 'sampleCount', a.sample_count,
                                                  'ndCount', a.nd_count,
                                                  'ndWithoutLimit', a.nd_without_limit,
                                                  'averageNdZero', a.avg_nd_zero,
                                                  'averageNdHalfMdl', a.avg_nd_half_mdl,
                                                  'averageNdDropped', a.avg_nd_dropped,
                                                  'ndPolicy', a.nd_policy, 'average', a.average,
                                                  'exceeds', a.exceeds,
                                                  'policySensitive', a.policy_sensitive)
                        from nal_annual a
                        where e.measure = 'annual_average' and a.facility_id = e.facility_id
                          and a.pollutant_key = e.pollutant_key
                          and a.reporting_year = e.reporting_year))
         as "v!" from violation_event e
         join facility f on f.id = e.facility_id
         join pollutant p on p.key = e.pollutant_key
         left join benchmark b on b.id = e.benchmark_id
         where e.id = $1"#,
        id
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(mut event) = event else {
        return Err(ApiError::NotFound(format!(
            "violation event {id} does not exist"
        )));
    };
    let samples: Vec<Value> = sqlx::query_scalar!(
        r#"select jsonb_build_object(
             'id', s.id, 'sourceTable', s.source_table, 'sourceRowId', s.source_row_id,
             'date', s.detected_on, 'qualifier', s.qualifier, 'nonDetect', s.non_detect,
             'rawValue', s.raw_value, 'rawUnit', s.raw_unit,
             'value', s.measured_value, 'unit', s.measured_unit,
             'benchmarkId', s.benchmark_id, 'benchmarkSource', b.source,
             'benchmarkType', b.benchmark_type, 'waterType', b.water_type,
             'benchmarkFraction', b.fraction, 'benchmarkValue', s.benchmark_value,
             'benchmarkUnit', s.benchmark_unit, 'unverified', b.unverified,
             'ratio', s.ratio, 'exceeds', s.exceeds, 'severity', s.severity,
             'screening', s.screening,
             'location', case s.source_table
                 when 'smarts_industrial_monitoring' then (
                   select jsonb_build_object('name', m.monitoring_location_name,
                       'type', m.monitoring_location_type,
                       'description', m.monitor_location_description,
                       'latitude', m.monitoring_latitude, 'longitude', m.monitoring_longitude)
                     from smarts_industrial_monitoring m where m.id = s.source_row_id)
                 when 'smarts_construction_monitoring' then (
                   select jsonb_build_object('name', m.monitoring_location_name,
                       'type', m.monitoring_location_type,
                       'description', m.monitor_location_description,
                       'latitude', m.monitoring_latitude, 'longitude', m.monitoring_longitude)
                     from smarts_construction_monitoring m where m.id = s.source_row_id)
                 else (
                   select jsonb_build_object('name', x.location,
                       'type', x.location_place_type, 'description', x.location_desc,
                       'locationPlaceId', x.location_place_id,
                       'latitude', coalesce(el.latitude, x.latitude),
                       'longitude', coalesce(el.longitude, x.longitude))
                     from esmr_sample x
                     left join esmr_location el on el.location_place_id = x.location_place_id
                    where x.id = s.source_row_id) end)
         as "v!" from violation_sample s join benchmark b on b.id = s.benchmark_id
         where s.event_id = $1
         order by s.detected_on, s.source_row_id, s.benchmark_id"#,
        id
    )
    .fetch_all(&state.pool)
    .await?;
    let history: Vec<Value> = sqlx::query_scalar!(
        r#"select jsonb_build_object('from', from_status, 'to', to_status, 'by', changed_by,
                                   'at', changed_at, 'notes', notes)
         as "v!" from violation_status_audit where event_id = $1 order by changed_at, id"#,
        id
    )
    .fetch_all(&state.pool)
    .await?;
    let duplicates: Vec<Value> = sqlx::query_scalar!(
        r#"select jsonb_build_object('smartsViolationId', v.violation_id, 'rowId', v.id,
                                   'violationType', v.violation_type,
                                   'occurrenceDate', v.occurrence_date, 'score', d.score,
                                   'reason', d.reason)
         as "v!" from violation_duplicate d join smarts_violation v on v.id = d.smarts_violation_id
         where d.event_id = $1 order by d.score desc, v.id"#,
        id
    )
    .fetch_all(&state.pool)
    .await?;
    // Results of the same facility, pollutant and year that the engine did not count, and why.
    let exclusions: Vec<Value> = sqlx::query_scalar!(
        r#"select jsonb_build_object('sourceTable', x.source_table, 'sourceRowId', x.source_row_id,
                                   'date', x.sample_date, 'rawValue', x.raw_value,
                                   'rawUnit', x.raw_unit, 'reason', x.reason)
         as "v!" from violation_event e
         join violation_exclusion x on x.facility_id = e.facility_id
                                   and x.pollutant_key = e.pollutant_key
                                   and x.reporting_year = e.reporting_year
         where e.id = $1
         order by x.sample_date nulls first, x.source_table, x.source_row_id"#,
        id
    )
    .fetch_all(&state.pool)
    .await?;
    event["samples"] = json!(samples);
    event["exclusions"] = json!(exclusions);
    event["statusHistory"] = json!(history);
    event["possibleDuplicates"] = json!(duplicates);
    Ok(json!({
        "data": event,
        "meta": { "freshness": freshness(&state.pool).await? },
    }))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StatusChange {
    status: String,
    notes: Option<String>,
    expected_status: Option<String>,
}

/// `PATCH /api/violations/{id}/status` (POST accepted too): `{"status", "notes"?,
/// "expectedStatus"?}`. 401 without credentials, 404 for an unknown event, 409 for a transition
/// the workflow does not allow (or when `expectedStatus` is stale).
pub async fn handle_status(state: &ApiState, req: Request) -> Response<Body> {
    if req.method() != Method::PATCH && req.method() != Method::POST {
        return ApiError::MethodNotAllowed.into_response();
    }
    match change(state, &req).await {
        Ok(body) => json_response(StatusCode::OK, &body, "no-store"),
        Err(e) => e.into_response(),
    }
}

async fn change(state: &ApiState, req: &Request) -> Result<Value, ApiError> {
    let actor = crate::auth::authenticate(&state.pool, req).await?;
    let id = path_id(req)?;
    let body: StatusChange = json_body(req)?;
    let to: Status = body
        .status
        .parse()
        .map_err(|m: String| ApiError::bad("status", m))?;
    let expected = body
        .expected_status
        .as_deref()
        .map(|s| s.parse::<Status>())
        .transpose()
        .map_err(|m| ApiError::bad("expectedStatus", m))?;
    if body
        .notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > 4000)
    {
        return Err(ApiError::bad("notes", "at most 4000 characters"));
    }
    let changed = review::change_status(
        &state.pool,
        id,
        to,
        &actor.0,
        body.notes.as_deref(),
        expected,
    )
    .await
    .map_err(|e| match e {
        ReviewError::NotFound(_) => ApiError::NotFound(e.to_string()),
        ReviewError::Conflict(m) => ApiError::Conflict(m),
        ReviewError::Db(db) => ApiError::Db(db),
    })?;
    // The directory, stored dashboards and cached listings show statuses: refresh the
    // facility's summary and the dashboards of the event's facility (statewide, its county,
    // its region), then start a new generation.
    let facility: Option<i64> =
        sqlx::query_scalar!("select facility_id from violation_event where id = $1", id)
            .fetch_optional(&state.pool)
            .await?;
    if let Some(f) = facility {
        crate::repo::summary::refresh(&state.pool, Some(&[f])).await?;
        super::dashboard::refresh_snapshots(&state.pool, Some(f)).await?;
    }
    state.cache.bump_generation().await;
    Ok(json!({ "data": changed }))
}
