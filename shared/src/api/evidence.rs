//! `GET /api/facilities/{id}/evidence`: what a notice letter rests on, as one ZIP.
//!
//! For the look-back window (`windowStart`, default five years before today, as the
//! directory's triage filters): every computed exceedance event with a sample in the window and
//! every source row behind it (dataset, file, line, when the file was read, the value as
//! published and as compared), the benchmarks with their citation and verification note, the
//! NAL statistics under every non-detect convention, the ERA Level history, the monitoring
//! completeness per half-year, and the facility's whole SMARTS violation, enforcement and
//! inspection record. Each table is a CSV and all of them are in `evidence.json`;
//! `manifest.json` lists the files (rows, SHA-256), the source files and how every number was
//! computed, so each figure can be redone from the listed rows.
//!
//! A Lambda response carries 6 MB; base64 takes a third more, so a ZIP over
//! [`MAX_ZIP_BYTES`] (or a window with over [`MAX_SAMPLE_ROWS`] sample rows) is a 413 that
//! says to narrow the window.

use super::ApiState;
use crate::http::{ApiError, Query, path_id};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Write;

/// The largest ZIP answered: base64 makes it 5.4 MB of the 6 MB a Lambda response may carry.
pub const MAX_ZIP_BYTES: usize = 4_000_000;
/// The most sample rows one ZIP reads (before compression they are ~400 bytes each).
pub const MAX_SAMPLE_ROWS: i64 = 150_000;

/// One table of the ZIP: its file name, what it holds, its columns (dotted paths into each
/// row) and its rows.
struct Table {
    name: &'static str,
    about: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Value>,
}

/// Handles the request.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return ApiError::MethodNotAllowed.into_response();
    }
    let path = req.uri().path().to_owned();
    let result = async {
        let id = path_id(&req)?;
        let q = Query::of(&req);
        let today = chrono::Utc::now().date_naive();
        let start = super::facilities::window_start(&q, today)?;
        super::facility::not_merged(state, id, &path).await?;
        // The cheap 404 first, before the tables are read.
        let facility = facility(state, id).await?;
        let tables = tables(state, id, start).await?;
        let zip = archive(&facility, start, today, &tables)?;
        if zip.len() > MAX_ZIP_BYTES {
            return Err(ApiError::PayloadTooLarge(format!(
                "the evidence since {start} is {} bytes compressed, over the {MAX_ZIP_BYTES} a \
                 response can carry; ask for a later windowStart",
                zip.len()
            )));
        }
        Ok((
            zip,
            format!("facility-{id}-evidence-{start}-to-{today}.zip"),
        ))
    }
    .await;
    match result {
        Ok((zip, name)) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/zip")
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            )
            .header(header::CACHE_CONTROL, super::list::WARM)
            .body(Body::Binary(zip))
            .unwrap_or_else(|_| ApiError::Internal("response".into()).into_response()),
        Err(e) => e.into_response(),
    }
}

/// The facility's head: name, place, permit ids (404 when there is no such facility).
async fn facility(state: &ApiState, id: i64) -> Result<Value, ApiError> {
    sqlx::query_scalar!(
        r#"select jsonb_build_object('id', f.id, 'name', f.name, 'address', f.address,
                 'city', f.city, 'county', f.county, 'region', f.region,
                 'latitude', f.latitude, 'longitude', f.longitude,
                 'permitIds', jsonb_build_object('wdids', coalesce(s.wdids, '{}'),
                     'appIds', coalesce(s.app_ids, '{}'),
                     'esmrPlaceIds', coalesce(s.esmr_place_ids, '{}')),
                 'links', jsonb_build_object('complete', '/api/facilities/' || f.id || '/complete',
                     'timeline', '/api/facilities/' || f.id || '/timeline')) as "v!"
           from facility f left join facility_summary s on s.facility_id = f.id
          where f.id = $1"#,
        id
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no facility {id}")))
}

const EVENT_COLUMNS: &[&str] = &[
    "id",
    "source",
    "pollutant",
    "reportingYear",
    "benchmarkType",
    "measure",
    "value",
    "unit",
    "benchmarkId",
    "maxRatio",
    "severity",
    "sampleCount",
    "exceedanceCount",
    "firstDate",
    "lastDate",
    "ndPolicy",
    "policySensitive",
    "screening",
    "unverified",
    "status",
    "detectedAt",
];

const SAMPLE_COLUMNS: &[&str] = &[
    "eventId",
    "sampleId",
    "dataset",
    "file",
    "fileSha256",
    "fileReadAt",
    "line",
    "sourceTable",
    "sourceRowId",
    "date",
    "parameter",
    "location",
    "qualifier",
    "nonDetect",
    "rawValue",
    "rawUnit",
    "mdl",
    "rl",
    "value",
    "unit",
    "benchmarkId",
    "benchmarkValue",
    "benchmarkUnit",
    "ratio",
    "exceeds",
    "screening",
];

const ANNUAL_COLUMNS: &[&str] = &[
    "pollutant",
    "reportingYear",
    "benchmarkId",
    "nal",
    "sampleCount",
    "ndCount",
    "ndWithoutLimit",
    "averageNdZero",
    "averageNdHalfMdl",
    "averageNdDropped",
    "ndPolicy",
    "average",
    "exceeds",
    "policySensitive",
    "instantCount",
];

const BENCHMARK_COLUMNS: &[&str] = &[
    "id",
    "pollutant",
    "type",
    "waterType",
    "fraction",
    "value",
    "valueMax",
    "unit",
    "effectiveDate",
    "source",
    "sourceUrl",
    "verification",
    "unverified",
    "hardnessDependent",
];

const LEVEL_COLUMNS: &[&str] = &[
    "pollutant",
    "level",
    "firstExceedanceYear",
    "secondExceedanceYear",
    "exceedanceYears",
    "level1Since",
    "level2Since",
];

const SAMPLING_COLUMNS: &[&str] = &[
    "reportingYear",
    "half",
    "from",
    "to",
    "sampledEvents",
    "required",
    "fewerThanRequired",
    "eventDates",
];

const VIOLATION_COLUMNS: &[&str] = &[
    "id",
    "violationId",
    "wdid",
    "appId",
    "type",
    "seriousViolation",
    "priority",
    "status",
    "occurrenceDate",
    "discoveryDate",
    "violationSource",
    "description",
    "inWindow",
    "file",
    "line",
];

const ENFORCEMENT_COLUMNS: &[&str] = &[
    "id",
    "enforcementId",
    "wdid",
    "appId",
    "type",
    "status",
    "issuanceDate",
    "adoptionDate",
    "totalAssessment",
    "receivedAmount",
    "balanceDue",
    "description",
    "inWindow",
    "file",
    "line",
];

const INSPECTION_COLUMNS: &[&str] = &[
    "id",
    "inspectionId",
    "wdid",
    "appId",
    "date",
    "purpose",
    "status",
    "agencyName",
    "countOfViolations",
    "inWindow",
    "file",
    "line",
];

/// Every table of the ZIP.
async fn tables(
    state: &ApiState,
    id: i64,
    start: chrono::NaiveDate,
) -> Result<Vec<Table>, ApiError> {
    let pool = &state.pool;
    let events = sqlx::query_scalar!(
        r#"select jsonb_build_object('id', e.id, 'source', e.source, 'pollutant', e.pollutant_key,
                 'reportingYear', e.reporting_year, 'benchmarkType', e.benchmark_type,
                 'measure', e.measure, 'value', e.value, 'unit', e.unit,
                 'benchmarkId', e.benchmark_id, 'maxRatio', e.max_ratio,
                 'severity', e.severity, 'sampleCount', e.sample_count,
                 'exceedanceCount', e.exceedance_count, 'firstDate', e.first_date,
                 'lastDate', e.last_date, 'ndPolicy', e.nd_policy,
                 'policySensitive', e.policy_sensitive, 'screening', e.screening,
                 'unverified', e.unverified, 'status', e.status,
                 'detectedAt', e.detected_at) as "v!"
           from violation_event e
          where e.facility_id = $1 and e.retracted_at is null and e.last_date >= $2
          order by e.first_date, e.id"#,
        id,
        start
    )
    .fetch_all(pool)
    .await?;
    // Each sample with its source row and the file that row was last read from (for eSMR,
    // the run's file of the sample's year).
    let samples = sqlx::query_scalar!(
        r#"select x.v || coalesce((
                   select jsonb_build_object('file', f.source_url, 'fileSha256', f.checksum,
                                             'fileReadAt', f.started_at)
                     from sync_file f
                    where f.run_id = (x.v ->> 'runId')::bigint and f.dataset = x.v ->> 'dataset'
                    order by (f.scope is not distinct from left(x.v ->> 'date', 4)) desc, f.id
                    limit 1), '{}') as "v!"
           from (
             select jsonb_build_object('eventId', s.event_id, 'sampleId', s.id,
                        'sourceTable', s.source_table, 'sourceRowId', s.source_row_id,
                        'date', s.detected_on, 'qualifier', s.qualifier,
                        'nonDetect', s.non_detect, 'rawValue', s.raw_value,
                        'rawUnit', s.raw_unit, 'value', s.measured_value,
                        'unit', s.measured_unit, 'benchmarkId', s.benchmark_id,
                        'benchmarkValue', s.benchmark_value, 'benchmarkUnit', s.benchmark_unit,
                        'ratio', s.ratio, 'exceeds', s.exceeds, 'screening', s.screening)
                    || case s.source_table
                         when 'smarts_industrial_monitoring' then (
                           select jsonb_build_object('dataset', 'smarts_industrial_monitoring',
                                      'line', m.source_line, 'runId', m.changed_run_id,
                                      'parameter', m.parameter,
                                      'location', m.monitoring_location_name,
                                      'mdl', m.mdl, 'rl', m.rl)
                             from smarts_industrial_monitoring m where m.id = s.source_row_id)
                         when 'smarts_construction_monitoring' then (
                           select jsonb_build_object('dataset', 'smarts_construction_monitoring',
                                      'line', m.source_line, 'runId', m.changed_run_id,
                                      'parameter', m.parameter,
                                      'location', m.monitoring_location_name,
                                      'mdl', m.mdl, 'rl', m.rl)
                             from smarts_construction_monitoring m where m.id = s.source_row_id)
                         else (
                           select jsonb_build_object('dataset', 'esmr', 'line', m.source_line,
                                      'runId', m.changed_run_id, 'parameter', m.parameter,
                                      'location', m.location, 'mdl', m.mdl, 'rl', m.rl)
                             from esmr_sample m where m.id = s.source_row_id) end as v
               from violation_sample s join violation_event e on e.id = s.event_id
              where e.facility_id = $1 and e.retracted_at is null and e.last_date >= $2
              order by s.event_id, s.detected_on, s.source_row_id, s.benchmark_id
              limit $3) x"#,
        id,
        start,
        MAX_SAMPLE_ROWS + 1
    )
    .fetch_all(pool)
    .await?;
    if samples.len() as i64 > MAX_SAMPLE_ROWS {
        return Err(ApiError::PayloadTooLarge(format!(
            "the exceedances since {start} rest on more than {MAX_SAMPLE_ROWS} sample rows; ask \
             for a later windowStart"
        )));
    }
    let annual = sqlx::query_scalar!(
        r#"select jsonb_build_object('pollutant', a.pollutant_key,
                 'reportingYear', a.reporting_year, 'benchmarkId', a.benchmark_id, 'nal', a.nal,
                 'sampleCount', a.sample_count, 'ndCount', a.nd_count,
                 'ndWithoutLimit', a.nd_without_limit, 'averageNdZero', a.avg_nd_zero,
                 'averageNdHalfMdl', a.avg_nd_half_mdl, 'averageNdDropped', a.avg_nd_dropped,
                 'ndPolicy', a.nd_policy, 'average', a.average, 'exceeds', a.exceeds,
                 'policySensitive', a.policy_sensitive, 'instantCount', a.instant_count) as "v!"
           from nal_annual a
          where a.facility_id = $1
            and exists (select 1 from violation_event e
                         where e.facility_id = a.facility_id and e.pollutant_key = a.pollutant_key
                           and e.reporting_year = a.reporting_year and e.retracted_at is null
                           and e.last_date >= $2)
          order by a.pollutant_key, a.reporting_year"#,
        id,
        start
    )
    .fetch_all(pool)
    .await?;
    let benchmarks = sqlx::query_scalar!(
        r#"select jsonb_build_object('id', b.id, 'pollutant', b.pollutant_key,
                 'type', b.benchmark_type, 'waterType', b.water_type, 'fraction', b.fraction,
                 'value', b.value, 'valueMax', b.value_max, 'unit', b.unit,
                 'effectiveDate', b.effective_date, 'source', b.source,
                 'sourceUrl', b.source_url, 'verification', b.verification,
                 'unverified', b.unverified, 'hardnessDependent', b.hardness_dependent) as "v!"
           from benchmark b
          where b.id in (select s.benchmark_id from violation_sample s
                           join violation_event e on e.id = s.event_id
                          where e.facility_id = $1 and e.retracted_at is null
                            and e.last_date >= $2
                         union
                         select e.benchmark_id from violation_event e
                          where e.facility_id = $1 and e.retracted_at is null
                            and e.last_date >= $2)
          order by b.id"#,
        id,
        start
    )
    .fetch_all(pool)
    .await?;
    let levels = sqlx::query_scalar!(
        r#"select jsonb_build_object('pollutant', l.pollutant_key, 'level', l.level,
                 'firstExceedanceYear', l.first_exceedance_year,
                 'secondExceedanceYear', l.second_exceedance_year,
                 'exceedanceYears', l.exceedance_years, 'level1Since', l.level_1_since,
                 'level2Since', l.level_2_since) as "v!"
           from nal_level_current l where l.facility_id = $1 order by l.pollutant_key"#,
        id
    )
    .fetch_all(pool)
    .await?;
    let sampling = sqlx::query_scalar!(
        r#"select jsonb_build_object(
                 'reportingYear', extract(year from h.half_start - interval '6 months')::integer,
                 'half', case when extract(month from h.half_start) = 7 then 'Jul-Dec'
                              else 'Jan-Jun' end,
                 'from', h.half_start, 'to', h.half_end, 'sampledEvents', h.sampled_events,
                 'required', $2::bigint, 'fewerThanRequired', h.sampled_events < $2,
                 'eventDates', h.event_dates) as "v!"
           from igp_sampling_halves(array[$1::bigint]) h order by h.half_start"#,
        id,
        crate::domain::sampling::REQUIRED_PER_HALF
    )
    .fetch_all(pool)
    .await?;
    let (violations, enforcement, inspections) = records(state, id, start).await?;
    Ok(vec![
        Table {
            name: "exceedances",
            about: "computed exceedance events with a sample on or after windowStart",
            columns: EVENT_COLUMNS,
            rows: events,
        },
        Table {
            name: "samples",
            about: "every sample behind those events, with its source row (dataset, file, line) as published and as compared",
            columns: SAMPLE_COLUMNS,
            rows: samples,
        },
        Table {
            name: "nal_annual",
            about: "IGP annual NAL statistics of those events' pollutant-years, under every non-detect convention",
            columns: ANNUAL_COLUMNS,
            rows: annual,
        },
        Table {
            name: "benchmarks",
            about: "the benchmarks compared, with their citation and verification note",
            columns: BENCHMARK_COLUMNS,
            rows: benchmarks,
        },
        Table {
            name: "levels",
            about: "ERA Level history per pollutant (the years that exceeded, the dates each Level began)",
            columns: LEVEL_COLUMNS,
            rows: levels,
        },
        Table {
            name: "sampling",
            about: "monitoring completeness per judged half-year (docs/SAMPLING.md)",
            columns: SAMPLING_COLUMNS,
            rows: sampling,
        },
        Table {
            name: "violations",
            about: "every SMARTS regulatory violation of the facility's records (inWindow: occurred on or after windowStart)",
            columns: VIOLATION_COLUMNS,
            rows: violations,
        },
        Table {
            name: "enforcement",
            about: "every SMARTS enforcement action on the facility's records (inWindow: issued on or after windowStart)",
            columns: ENFORCEMENT_COLUMNS,
            rows: enforcement,
        },
        Table {
            name: "inspections",
            about: "every SMARTS inspection of the facility's records (inWindow: on or after windowStart)",
            columns: INSPECTION_COLUMNS,
            rows: inspections,
        },
    ])
}

/// The facility's SMARTS violations, enforcement actions and inspections, each with its file
/// and line.
async fn records(
    state: &ApiState,
    id: i64,
    start: chrono::NaiveDate,
) -> Result<(Vec<Value>, Vec<Value>, Vec<Value>), ApiError> {
    use super::facility::{LINKED, mine};
    let file = |dataset: &str| {
        format!(
            "(select f.source_url from sync_file f where f.run_id = t.changed_run_id
                and f.dataset = '{dataset}' order by f.id limit 1)"
        )
    };
    let queries = [
        format!(
            "with {LINKED} select jsonb_build_object('id', t.id, 'violationId', t.violation_id,
                 'wdid', t.wdid, 'appId', t.app_id, 'type', t.violation_type,
                 'seriousViolation', t.serious_violation, 'priority', t.violation_priority,
                 'status', t.violation_status, 'occurrenceDate', t.occurrence_date,
                 'discoveryDate', t.discovery_date, 'violationSource', t.violation_source,
                 'description', t.description,
                 'inWindow', coalesce(t.occurrence_date, t.discovery_date) >= $2,
                 'file', {f}, 'line', t.source_line)
               from {from} order by coalesce(t.occurrence_date, t.discovery_date), t.id",
            f = file("smarts_violations"),
            from = mine("smarts_violation"),
        ),
        format!(
            "with {LINKED} select jsonb_build_object('id', t.id, 'enforcementId', t.enforcement_id,
                 'wdid', t.wdid, 'appId', t.app_id, 'type', t.enforcement_type,
                 'status', t.enforcement_status, 'issuanceDate', t.issuance_date,
                 'adoptionDate', t.adoption_date, 'totalAssessment', t.total_assessment,
                 'receivedAmount', t.received_amount, 'balanceDue', t.balance_due,
                 'description', t.description, 'inWindow', t.issuance_date >= $2,
                 'file', {f}, 'line', t.source_line)
               from {from} order by t.issuance_date, t.id",
            f = file("smarts_enforcement_actions"),
            from = mine("smarts_enforcement_action"),
        ),
        format!(
            "with {LINKED} select jsonb_build_object('id', t.id, 'inspectionId', t.inspection_id,
                 'wdid', t.wdid, 'appId', t.app_id, 'date', t.inspection_date,
                 'purpose', t.inspection_purpose, 'status', t.inspection_status,
                 'agencyName', t.agency_name, 'countOfViolations', t.count_of_violations,
                 'inWindow', t.inspection_date >= $2, 'file', {f}, 'line', t.source_line)
               from {from} order by t.inspection_date, t.id",
            f = file("smarts_inspections"),
            from = mine("smarts_inspection"),
        ),
    ];
    let mut out = Vec::with_capacity(3);
    for sql in queries {
        // Runtime SQL: each statement is built from the linked-record CTE of facility.rs.
        let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(start)
            .fetch_all(&state.pool)
            .await?;
        out.push(rows);
    }
    let inspections = out.pop().unwrap_or_default();
    let enforcement = out.pop().unwrap_or_default();
    let violations = out.pop().unwrap_or_default();
    Ok((violations, enforcement, inspections))
}

/// How every number in the ZIP was computed (the manifest's `method`).
fn method() -> Value {
    json!({
        "window": "exceedance events whose latest sample is on or after windowStart; SMARTS records are all listed, inWindow marks those dated on or after windowStart",
        "reportingYear": "July 1 - June 30, named by the year it starts in",
        "NAL_ANNUAL": "IGP annual NAL: the average of every comparable result of the pollutant at the facility in the reporting year (all discharge locations; dissolved fractions excluded: IGP metals are total) compared with the annual NAL; an exceedance when the average is greater. samples.csv lists every result of the average (exceeds marks those above the NAL); nal_annual.csv has the average under each non-detect convention: averageNdZero (a non-detect counts as 0), averageNdHalfMdl (half its detection limit, mdl else rl, converted like the result), averageNdDropped (non-detects left out); ndPolicy names the one used, which is the event's value; maxRatio = value / nal",
        "NAL_INSTANT": "IGP instantaneous maximum (TSS 400 mg/L, O&G 25 mg/L) or range (pH 6.0-9.0): an exceedance when two or more distinct samples of the reporting year are above it or outside it; samples.csv lists those results",
        "other": "every other applicable benchmark (CTR/EPA aquatic-life CMC/CCC, drinking-water MCLs and action levels): each result above it; screening marks a comparison of unlike fractions or of discharge with a drinking-water standard",
        "nonDetects": "a result qualified ND, < or <= is never an exceedance on its own",
        "units": "value and benchmarkValue are in unit / benchmarkUnit after conversion (mg/L, pH units); rawValue and rawUnit are as published; ratio = value / benchmarkValue",
        "severity": "from maxRatio: low up to 2x, moderate up to 5x, high up to 10x, critical above (violation_severity)",
        "levels": "ERA Level: Baseline; Level 1 from the July 1 after the first reporting year with an NAL exceedance of the pollutant; Level 2 from the July 1 after a later exceeding year. Computed from the published results; SMARTS assigns the official Level",
        "sampling": crate::domain::sampling::note(),
        "provenance": "dataset, file (the URL the sync read) and line (the physical line the record starts on, header = 1) of the row as last changed; fileSha256 and fileReadAt say which version of the file",
    })
}

/// The ZIP: a CSV per table, `evidence.json` with all of them, and `manifest.json`.
fn archive(
    facility: &Value,
    start: chrono::NaiveDate,
    today: chrono::NaiveDate,
    tables: &[Table],
) -> Result<Vec<u8>, ApiError> {
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(format!("evidence ZIP: {e}"));
    let mut files: Vec<(String, Vec<u8>, &str, usize)> = Vec::new();
    let mut all = serde_json::Map::new();
    for t in tables {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(t.columns).map_err(|e| internal(&e))?;
        for row in &t.rows {
            w.write_record(super::list::csv_cells(row, t.columns))
                .map_err(|e| internal(&e))?;
        }
        let bytes = w.into_inner().map_err(|e| internal(&e))?;
        files.push((format!("{}.csv", t.name), bytes, t.about, t.rows.len()));
        all.insert(t.name.to_owned(), Value::Array(t.rows.clone()));
    }
    let evidence = serde_json::to_vec_pretty(&json!({ "facility": facility, "tables": all }))
        .map_err(|e| internal(&e))?;
    files.push((
        "evidence.json".into(),
        evidence,
        "every table above as JSON, with the facility",
        tables.len(),
    ));
    // The source files the rows were read from.
    let mut sources: Vec<Value> = Vec::new();
    for row in tables.iter().flat_map(|t| &t.rows) {
        if let Some(file) = row["file"].as_str() {
            let entry = json!({ "dataset": row["dataset"], "file": file,
                                "sha256": row["fileSha256"], "readAt": row["fileReadAt"] });
            if !sources.iter().any(|s| s["file"] == file) {
                sources.push(entry);
            }
        }
    }
    let manifest = json!({
        "facility": facility,
        "window": { "from": start, "to": today },
        "generatedAt": chrono::Utc::now(),
        "files": files.iter().map(|(name, bytes, about, rows)| json!({
            "name": name, "rows": rows, "bytes": bytes.len(),
            "sha256": hex::encode(Sha256::digest(bytes)), "about": about,
        })).collect::<Vec<_>>(),
        "sources": sources,
        "method": method(),
    });
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(|e| internal(&e))?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in std::iter::once(("manifest.json".to_owned(), manifest))
        .chain(files.into_iter().map(|(n, b, _, _)| (n, b)))
    {
        zip.start_file(name, options).map_err(|e| internal(&e))?;
        zip.write_all(&bytes).map_err(|e| internal(&e))?;
    }
    Ok(zip.finish().map_err(|e| internal(&e))?.into_inner())
}
