//! The read API on generated files in the official layouts, synced through the pipeline:
//! every endpoint's numbers checked against independent counts from the files (read with the
//! csv crate), paging walked to the end, validation, CSV, cache tiers, the OpenAPI document.

mod support;

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use support::{Harness, Manifest, column_values, harness};

struct Data {
    violations: Vec<Vec<String>>,
    enforcement: Vec<Vec<String>>,
    inspections: Vec<Vec<String>>,
    monitoring: Vec<Vec<String>>,
}

const V_COLS: &[&str] = &[
    "WDID",
    "APP_ID",
    "VIOLATION_TYPE",
    "SERIOUS_VIOLATION",
    "OCCURRENCE_DATE",
    "DISCOVERY_DATE",
    "PLACE_COUNTY",
    "VIOLATION_STATUS",
];
const E_COLS: &[&str] = &[
    "WDID",
    "APP_ID",
    "ENFORCEMENT_TYPE",
    "ENFORCEMENT_STATUS",
    "TOTAL_ASSESSMENT",
    "RECEIVED_AMOUNT",
    "ISSUANCE_DATE",
    "ADOPTION_DATE",
    "PLACE_COUNTY",
];
const I_COLS: &[&str] = &["WDID", "APP_ID", "INSPECTION_ID", "INSPECTION_DATE"];

async fn setup(name: &str) -> (Harness, Data, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let manifest: Manifest = support::generate(dir.path(), 11, "0.004");
    let h = harness(name, Some(5_000)).await;
    h.sync(manifest.sources(dir.path())).await;
    let run = h.json("select to_jsonb(r) from sync_run r").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let p = |d: &str| manifest.path(dir.path(), d);
    let data = Data {
        violations: column_values(&p("smarts_violations"), V_COLS),
        enforcement: column_values(&p("smarts_enforcement_actions"), E_COLS),
        inspections: column_values(&p("smarts_inspections"), I_COLS),
        monitoring: column_values(&p("smarts_industrial_monitoring"), &["WDID", "APP_ID"]),
    };
    (h, data, dir)
}

fn money(raw: &str) -> f64 {
    raw.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .unwrap_or(0.0)
}

fn present(raw: &str) -> bool {
    !matches!(raw, "" | "NA" | "NaN")
}

async fn get(h: &Harness, function: &str, path: &str) -> Value {
    let (status, body, _) = h.get(function, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Every page of a list endpoint, following `nextCursor`.
async fn walk(h: &Harness, function: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &next {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_owned(),
        };
        let body = get(h, function, &url).await;
        let key = if body["features"].is_array() {
            "features"
        } else {
            "data"
        };
        items.extend(body[key].as_array().unwrap().iter().cloned());
        match body["page"]["nextCursor"].as_str() {
            Some(c) => next = Some(c.to_owned()),
            None => return items,
        }
    }
}

fn tally(rows: &[Vec<String>], col: usize) -> HashMap<String, i64> {
    let mut m = HashMap::new();
    for r in rows {
        let k = if present(&r[col]) {
            r[col].clone()
        } else {
            "unknown".into()
        };
        *m.entry(k).or_default() += 1;
    }
    m
}

fn as_tally(v: &Value) -> HashMap<String, i64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_i64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smarts_lists_match_the_files() {
    let (h, d, _dir) = setup("readsmarts").await;

    // Violations: total, stats, filters, every page once.
    let all = get(
        &h,
        "api-smarts-violations",
        "/api/smarts/violations?limit=1000",
    )
    .await;
    assert_eq!(all["page"]["total"], d.violations.len() as i64);
    let serious = d.violations.iter().filter(|r| r[3] == "Y").count() as i64;
    assert_eq!(all["stats"]["serious"], serious);
    assert_eq!(as_tally(&all["stats"]["byType"]), tally(&d.violations, 2));
    assert_eq!(as_tally(&all["stats"]["byStatus"]), tally(&d.violations, 7));
    let only = get(
        &h,
        "api-smarts-violations",
        "/api/smarts/violations?seriousOnly=true",
    )
    .await;
    assert_eq!(only["page"]["total"], serious);
    let (from, to) = ("2015-07-01", "2020-06-30");
    let in_range = d
        .violations
        .iter()
        .filter(|r| present(&r[4]) && r[4].as_str() >= from && r[4].as_str() <= to)
        .count() as i64;
    let ranged = get(
        &h,
        "api-smarts-violations",
        &format!("/api/smarts/violations?dateFrom={from}&dateTo={to}"),
    )
    .await;
    assert_eq!(ranged["page"]["total"], in_range);
    let (top_key, top_n) = {
        let mut by_key: HashMap<(String, String), i64> = HashMap::new();
        for r in &d.violations {
            *by_key.entry((r[0].clone(), r[1].clone())).or_default() += 1;
        }
        by_key
            .into_iter()
            .max_by_key(|(k, n)| (*n, k.clone()))
            .unwrap()
    };
    let by_wdid = get(
        &h,
        "api-smarts-violations",
        &format!(
            "/api/smarts/violations?wdid={}&appId={}",
            urlencode(&top_key.0),
            top_key.1
        ),
    )
    .await;
    assert_eq!(by_wdid["page"]["total"], top_n);
    let county = "Los Angeles";
    let la = d.violations.iter().filter(|r| r[6] == county).count() as i64;
    let by_county = get(
        &h,
        "api-smarts-violations",
        "/api/smarts/violations?county=los%20angeles",
    )
    .await;
    assert_eq!(by_county["page"]["total"], la);
    let pages = walk(
        &h,
        "api-smarts-violations",
        "/api/smarts/violations?limit=7",
    )
    .await;
    let ids: HashSet<i64> = pages.iter().map(|v| v["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), d.violations.len());
    assert_eq!(pages.len(), d.violations.len());
    // Every item carries its canonical facility and provenance.
    assert!(pages.iter().all(|v| v["facilityId"].is_i64()));
    assert!(pages.iter().all(|v| v["provenance"]["sourceLine"].is_i64()));

    // Enforcement: money and counts.
    let e = get(&h, "api-smarts-enforcement", "/api/smarts/enforcement").await;
    assert_eq!(e["page"]["total"], d.enforcement.len() as i64);
    let assessed: f64 = d.enforcement.iter().map(|r| money(&r[4])).sum();
    let received: f64 = d.enforcement.iter().map(|r| money(&r[5])).sum();
    assert!((e["stats"]["totalAssessed"].as_f64().unwrap() - assessed).abs() < 0.005);
    assert!((e["stats"]["totalReceived"].as_f64().unwrap() - received).abs() < 0.005);
    let active = d.enforcement.iter().filter(|r| r[3] == "Active").count() as i64;
    assert_eq!(e["stats"]["active"], active);
    assert_eq!(as_tally(&e["stats"]["byType"]), tally(&d.enforcement, 2));
    let nov = d.enforcement.iter().filter(|r| r[2] == "NOV").count() as i64;
    let e_nov = get(
        &h,
        "api-smarts-enforcement",
        "/api/smarts/enforcement?enforcementType=NOV",
    )
    .await;
    assert_eq!(e_nov["page"]["total"], nov);

    // Inspections with their violations (links derived from VIOLATION_SOURCE_ID).
    let i = walk(
        &h,
        "api-smarts-inspections",
        "/api/smarts/inspections?limit=1000",
    )
    .await;
    assert_eq!(i.len(), d.inspections.len());
    let linked: i64 = i
        .iter()
        .map(|x| x["violations"].as_array().unwrap().len() as i64)
        .sum();
    let expected_links = h
        .scalar_i64(
            "select count(*) from smarts_inspection_violation iv
               join smarts_violation v on v.violation_id = iv.violation_id
               join smarts_inspection i on i.inspection_id = iv.inspection_id",
        )
        .await;
    assert_eq!(linked, expected_links);
    assert!(
        linked > 0,
        "generated data links some violations to inspections"
    );

    // SMARTS facility records of both programs.
    let f = get(&h, "api-smarts-facilities", "/api/smarts/facilities").await;
    let industrial = h
        .scalar_i64("select count(*) from smarts_industrial_facility")
        .await;
    let construction = h
        .scalar_i64("select count(*) from smarts_construction_facility")
        .await;
    assert_eq!(f["page"]["total"], industrial + construction);
    assert_eq!(f["stats"]["byKind"]["construction"], construction);
    let walked = walk(
        &h,
        "api-smarts-facilities",
        "/api/smarts/facilities?kind=construction&limit=50",
    )
    .await;
    assert_eq!(walked.len() as i64, construction);
    assert!(walked.iter().all(|x| x["kind"] == "construction"));

    // CSV: the same page as rows.
    let req = lambda_http::http::Request::builder()
        .uri("/api/smarts/violations?format=csv&limit=1000")
        .body(lambda_http::Body::Empty)
        .unwrap();
    let req = lambda_http::RequestExt::with_query_string_parameters(
        req,
        HashMap::from([
            ("format".to_owned(), "csv".to_owned()),
            ("limit".to_owned(), "1000".to_owned()),
        ]),
    );
    let resp = stormwater::api::routes::function("api-smarts-violations")
        .unwrap()
        .handle(&h.api, req)
        .await;
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let lambda_http::Body::Text(csv) = resp.body() else {
        panic!("CSV text")
    };
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(&reader.headers().unwrap()[1], "violationId");
    assert_eq!(reader.records().count(), d.violations.len());
}

fn urlencode(s: &str) -> String {
    s.replace(' ', "%20")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facility_profile_complete_and_timeline_match_the_files() {
    let (h, d, _dir) = setup("readfacility").await;
    // The facility with the most SMARTS violations.
    let mut by_key: HashMap<(String, String), i64> = HashMap::new();
    for r in &d.violations {
        *by_key.entry((r[0].clone(), r[1].clone())).or_default() += 1;
    }
    let ((wdid, app_id), n) = by_key
        .into_iter()
        .max_by_key(|(k, n)| (*n, k.clone()))
        .unwrap();
    let id = h
        .scalar_i64(&format!(
            "select facility_id from facility_link where status = 'linked'
              and source like 'smarts%' and source_key = '{app_id}|{wdid}'"
        ))
        .await;
    let mine = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
        rows.iter()
            .filter(|r| r[0] == wdid && r[1] == app_id)
            .cloned()
            .collect()
    };
    let (v, e, i) = (
        mine(&d.violations),
        mine(&d.enforcement),
        mine(&d.inspections),
    );
    let monitoring = mine(&d.monitoring).len() as i64;

    let profile = get(&h, "api-facility", &format!("/api/facilities/{id}")).await;
    let p = &profile["data"];
    assert_eq!(p["id"], id);
    assert_eq!(p["counts"]["smartsViolations"], n);
    assert_eq!(p["counts"]["enforcementActions"], e.len() as i64);
    assert_eq!(p["counts"]["inspections"], i.len() as i64);
    let events = h
        .scalar_i64(&format!(
            "select count(*) from violation_event where facility_id = {id} and retracted_at is null"
        ))
        .await;
    assert_eq!(p["counts"]["violationEvents"], events);
    assert!(
        p["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["sourceKey"] == format!("{app_id}|{wdid}") && l["status"] == "linked")
    );
    assert!(profile["meta"]["freshness"]["smarts_violations"]["lastSuccessfulSync"].is_string());

    let complete = get(
        &h,
        "api-facility-complete",
        &format!("/api/facilities/{id}/complete"),
    )
    .await;
    let c = &complete["data"];
    assert_eq!(c["smarts"]["violations"]["total"], n);
    assert_eq!(
        c["smarts"]["violations"]["items"].as_array().unwrap().len() as i64,
        n
    );
    assert_eq!(c["smarts"]["enforcement"]["total"], e.len() as i64);
    let assessed: f64 = e.iter().map(|r| money(&r[4])).sum();
    assert!(
        (c["smarts"]["enforcement"]["totalAssessed"]
            .as_f64()
            .unwrap()
            - assessed)
            .abs()
            < 0.005
    );
    assert_eq!(c["smarts"]["inspections"]["total"], i.len() as i64);
    assert_eq!(c["smarts"]["monitoring"]["results"], monitoring);
    assert_eq!(c["violationEvents"]["total"], events);
    assert_eq!(c["smarts"]["records"].as_array().unwrap().len(), 1);

    // Timeline: every dated record, newest first; paging gives the same feed.
    let dated = v
        .iter()
        .filter(|r| present(&r[4]) || present(&r[5]))
        .count()
        + i.iter().filter(|r| present(&r[3])).count()
        + e.iter().filter(|r| present(&r[6])).count()
        + e.iter()
            .filter(|r| money(&r[4]) > 0.0 && (present(&r[7]) || present(&r[6])))
            .count();
    let dated_events = h
        .scalar_i64(&format!(
            "select count(*) from violation_event where facility_id = {id}
              and retracted_at is null and first_date is not null"
        ))
        .await;
    let feed = walk(
        &h,
        "api-facility-timeline",
        &format!("/api/facilities/{id}/timeline?limit=1000"),
    )
    .await;
    assert_eq!(feed.len() as i64, dated as i64 + dated_events);
    let dates: Vec<&str> = feed.iter().map(|x| x["date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let paged = walk(
        &h,
        "api-facility-timeline",
        &format!("/api/facilities/{id}/timeline?limit=3"),
    )
    .await;
    assert_eq!(paged, feed);
    let only = get(
        &h,
        "api-facility-timeline",
        &format!("/api/facilities/{id}/timeline?kind=violation&limit=1000"),
    )
    .await;
    assert!(
        only["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["kind"] == "violation")
    );

    // Unknown facility: 404 with the JSON error shape.
    for f in [
        "api-facility",
        "api-facility-complete",
        "api-facility-timeline",
    ] {
        let path = match f {
            "api-facility" => "/api/facilities/999999999".to_owned(),
            "api-facility-complete" => "/api/facilities/999999999/complete".to_owned(),
            _ => "/api/facilities/999999999/timeline".to_owned(),
        };
        let (status, body, _) = h.get(f, &path).await;
        assert_eq!(status, 404, "{f}");
        assert_eq!(body["error"]["status"], 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_geojson_validation_and_cache_tiers() {
    let (h, d, _dir) = setup("readdash").await;
    // The sync's finalize preloaded the hot keys of the new generation.
    let (status, all, cache) = h.get("api-dashboard", "/api/dashboard").await;
    assert_eq!((status, cache.as_deref()), (200, Some("hit")));
    let top: i64 = h
        .scalar_i64(
            "select facility_id from violation_event where retracted_at is null
              group by 1 order by count(*) desc, 1 limit 1",
        )
        .await;
    let (_, _, cache) = h
        .get(
            "api-facility-complete",
            &format!("/api/facilities/{top}/complete"),
        )
        .await;
    assert_eq!(cache.as_deref(), Some("hit"));
    let s = &all["data"]["summary"];
    assert_eq!(s["smartsViolations"], d.violations.len() as i64);
    assert_eq!(s["enforcementActions"], d.enforcement.len() as i64);
    assert_eq!(s["inspections"], d.inspections.len() as i64);
    let assessed: f64 = d.enforcement.iter().map(|r| money(&r[4])).sum();
    assert!((s["penaltiesAssessed"].as_f64().unwrap() - assessed).abs() < 0.005);
    let events = h
        .scalar_i64("select count(*) from violation_event where retracted_at is null")
        .await;
    assert_eq!(s["violationEvents"], events);
    let facilities = h
        .scalar_i64("select count(*) from facility where merged_into is null")
        .await;
    assert_eq!(s["facilities"], facilities);
    // The monthly timeline adds up to the totals of dated records.
    let months = all["data"]["timeline"].as_array().unwrap();
    let sum = |k: &str| months.iter().map(|m| m[k].as_i64().unwrap()).sum::<i64>();
    let dated_v = d.violations.iter().filter(|r| present(&r[4])).count() as i64;
    assert_eq!(sum("smartsViolations"), dated_v);
    assert_eq!(
        sum("inspections"),
        d.inspections.iter().filter(|r| present(&r[3])).count() as i64
    );
    assert!(all["data"]["recentActivity"].as_array().unwrap().len() <= 20);

    // Without a date range the dashboards are the ones stored at finalize, equal to a live
    // computation.
    assert!(all["meta"]["snapshotAt"].is_string());
    let la = get(&h, "api-dashboard", "/api/dashboard?county=Los%20Angeles").await;
    assert!(la["meta"]["snapshotAt"].is_string());
    let live = stormwater::api::dashboard::compute(
        h.pool(),
        &stormwater::api::dashboard::Scope {
            county: Some("Los Angeles".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for k in live.as_object().unwrap().keys() {
        assert_eq!(la["data"][k], live[k], "{k}");
    }
    assert_eq!(
        la["data"]["summary"]["smartsViolations"],
        d.violations
            .iter()
            .filter(|r| r[6] == "Los Angeles")
            .count() as i64
    );
    assert_eq!(
        la["data"]["summary"]["enforcementActions"],
        d.enforcement
            .iter()
            .filter(|r| r[8] == "Los Angeles")
            .count() as i64
    );
    let ranged = get(
        &h,
        "api-dashboard",
        "/api/dashboard?dateFrom=2018-01-01&dateTo=2018-12-31",
    )
    .await;
    assert!(
        ranged["meta"]["snapshotAt"].is_null(),
        "date ranges are live"
    );
    // Stats by source and area are stored too: equal to counts.
    let stats = get(
        &h,
        "api-violations-stats",
        "/api/violations/stats?source=smarts&county=Los%20Angeles",
    )
    .await;
    let where_la =
        "e.retracted_at is null and e.source like 'smarts%' and f.county = 'Los Angeles'";
    let counts: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select e.severity, count(*) from violation_event e join facility f on f.id = e.facility_id
          where {where_la} group by 1"
    )))
    .fetch_all(h.pool())
    .await
    .unwrap();
    assert_eq!(
        as_tally(&stats["data"]["bySeverity"]),
        counts.into_iter().collect::<HashMap<_, _>>()
    );
    // Facilities with an event there, or with a regulatory violation published there (both
    // kinds are counted by default).
    let facilities = h
        .scalar_i64(&format!(
            "select count(distinct id) from (
               select e.facility_id as id from violation_event e
                 join facility f on f.id = e.facility_id where {where_la}
               union
               select l.facility_id from smarts_violation t
                 join facility_link l on l.status = 'linked' and l.source like 'smarts%'
                  and l.source_key = coalesce(t.app_id, '') || '|' || t.wdid
                where t.withdrawn_run_id is null and t.place_county = 'Los Angeles') x"
        ))
        .await;
    assert_eq!(stats["data"]["facilities"], facilities);
    // List totals by source and area come from the stored dashboards: equal to a count.
    for (path, sql) in [
        ("/api/violations?kind=computed", "true"),
        (
            "/api/violations?kind=computed&source=smarts",
            "e.source like 'smarts%'",
        ),
        ("/api/violations?source=esmr", "e.source = 'esmr'"),
        (
            "/api/violations?kind=computed&county=los%20angeles",
            "lower(f.county) = 'los angeles'",
        ),
        (
            "/api/violations?region=4&source=smarts&kind=computed",
            "f.region = '4' and e.source like 'smarts%'",
        ),
        (
            "/api/violations?severity=critical",
            "e.severity = 'critical'",
        ),
    ] {
        let body = get(&h, "api-violations", path).await;
        let n = h
            .scalar_i64(&format!(
                "select count(*) from violation_event e join facility f on f.id = e.facility_id
                  where e.retracted_at is null and {sql}"
            ))
            .await;
        assert!(n > 0 || path.contains("esmr"), "{path} finds something");
        assert_eq!(body["page"]["total"], n, "{path}");
    }
    // Both kinds by default: the events and the current regulatory violations.
    let everything = get(&h, "api-violations", "/api/violations").await;
    let n = h
        .scalar_i64(
            "select (select count(*) from violation_event where retracted_at is null)
                  + (select count(*) from smarts_violation where withdrawn_run_id is null)",
        )
        .await;
    assert_eq!(everything["page"]["total"], n);
    assert_eq!(
        ranged["data"]["summary"]["smartsViolations"],
        d.violations
            .iter()
            .filter(|r| r[4].starts_with("2018-"))
            .count() as i64
    );

    // A review action refreshes the stored dashboards it touches.
    let event = h
        .scalar_i64("select min(id) from violation_event where retracted_at is null")
        .await;
    h.review(event, "under_review").await;
    let after = get(&h, "api-dashboard", "/api/dashboard").await;
    assert_eq!(after["data"]["violations"]["byStatus"]["under_review"], 1);
    let stats = get(&h, "api-violations-stats", "/api/violations/stats").await;
    assert_eq!(stats["data"]["byStatus"]["under_review"], 1);
    assert_eq!(
        after["data"],
        stormwater::api::dashboard::compute(h.pool(), &Default::default())
            .await
            .unwrap()
    );

    // GeoJSON: a bbox around Los Angeles and a radius, against the coordinates in the table.
    let bbox = get(
        &h,
        "api-facilities-geojson",
        "/api/facilities.geojson?bbox=-119,33.5,-117.5,34.9&limit=1000",
    )
    .await;
    let in_box = h
        .scalar_i64(
            "select count(*) from facility where latitude between 33.5 and 34.9
               and longitude between -119 and -117.5 and merged_into is null",
        )
        .await;
    assert_eq!(bbox["features"].as_array().unwrap().len() as i64, in_box);
    assert_eq!(bbox["type"], "FeatureCollection");
    let coords: Vec<(f64, f64)> = sqlx::query_as(
        "select latitude, longitude from facility
              where latitude is not null and merged_into is null",
    )
    .fetch_all(h.pool())
    .await
    .unwrap();
    let (lat0, lon0, r) = (34.05, -118.25, 60.0);
    let within = coords
        .iter()
        .filter(|(lat, lon)| haversine_km(lat0, lon0, *lat, *lon) <= r)
        .count();
    let radius = walk(
        &h,
        "api-facilities-geojson",
        &format!("/api/facilities.geojson?lat={lat0}&lon={lon0}&radiusKm={r}&limit=5"),
    )
    .await;
    assert_eq!(radius.len(), within);

    // Validation: 400 naming the parameter.
    for (function, path, parameter) in [
        (
            "api-smarts-violations",
            "/api/smarts/violations?dateFrom=2024-02-30",
            "dateFrom",
        ),
        (
            "api-smarts-violations",
            "/api/smarts/violations?status=gone",
            "status",
        ),
        (
            "api-smarts-violations",
            "/api/smarts/violations?limit=1001",
            "limit",
        ),
        (
            "api-smarts-violations",
            "/api/smarts/violations?cursor=zzz",
            "cursor",
        ),
        (
            "api-smarts-enforcement",
            "/api/smarts/enforcement?wdidd=1",
            "wdidd",
        ),
        (
            "api-dashboard",
            "/api/dashboard?dateFrom=2020-01-02&dateTo=2020-01-01",
            "dateTo",
        ),
        (
            "api-facilities-geojson",
            "/api/facilities.geojson?bbox=1,2,3",
            "bbox",
        ),
        (
            "api-facilities-geojson",
            "/api/facilities.geojson?lat=34&lon=-118",
            "radiusKm",
        ),
        (
            "api-facility-timeline",
            "/api/facilities/1/timeline?kind=party",
            "kind",
        ),
        ("api-facility", "/api/facilities/abc", "id"),
        (
            "api-violations",
            "/api/violations?severity=apocalyptic",
            "severity",
        ),
    ] {
        let (status, body, _) = h.get(function, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["parameter"], parameter, "{path}: {body}");
    }

    // Cache tiers: hot lists 5 minutes, one facility an hour; a second call is a hit.
    let control = |function: &'static str, path: &'static str| {
        let h = &h;
        async move {
            let req = lambda_http::http::Request::builder()
                .uri(path)
                .body(lambda_http::Body::Empty)
                .unwrap();
            let resp = stormwater::api::routes::function(function)
                .unwrap()
                .handle(&h.api, req)
                .await;
            (
                resp.headers()["cache-control"].to_str().unwrap().to_owned(),
                resp.headers()
                    .get("x-cache")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        }
    };
    assert_eq!(
        control("api-dashboard", "/api/dashboard").await,
        ("public, max-age=300".to_owned(), Some("hit".to_owned()))
    );
    assert_eq!(
        control("api-facility", "/api/facilities/1").await.0,
        "public, max-age=3600"
    );

    // The OpenAPI document lists every route.
    let doc = get(&h, "api-openapi", "/api/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path, _) in stormwater::api::routes::all() {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{method} {path}"
        );
    }
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * a.sqrt().min(1.0).asin()
}
