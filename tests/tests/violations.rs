//! The violation engine end to end: files synced through the real pipeline (stage -> S3 -> SQS ->
//! import -> finalize, which runs the engine), results checked against exact expectations for
//! constructed cases and against an independent computation on the real Region 1 rows.

mod support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use stormwater::sync::manifest::Source;
use stormwater::violations::NdPolicy;
use stormwater::violations::engine::{self, Options};
use support::{Harness, file_url, fixture, harness, shared_data};

const REGION1_MONITORING: &str =
    "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_Ad_Hoc_Reports_-_Parameter_Data.txt";

fn monitoring(path: &str) -> Source {
    Source {
        dataset: "smarts_industrial_monitoring".into(),
        url: file_url(&fixture(path)),
        scope: None,
    }
}

fn facilities() -> Source {
    Source {
        dataset: "smarts_industrial_facilities".into(),
        url: file_url(&fixture("violations/industrial_facilities.txt")),
        scope: None,
    }
}

/// `facility.id` of the application `app` of the constructed cases.
async fn facility(h: &Harness, app: &str) -> i64 {
    h.scalar_i64(&format!(
        "select facility_id from facility_link
         where source = 'smarts_industrial' and source_key = '{app}|4 19I9{}'",
        &app[1..]
    ))
    .await
}

/// The events of one facility as `pollutant/year/type` -> event JSON.
async fn events(h: &Harness, facility_id: i64) -> BTreeMap<String, Value> {
    let rows: Vec<Value> = sqlx::query_scalar(
        "select to_jsonb(e) from violation_event e
         where facility_id = $1 and retracted_at is null order by id",
    )
    .bind(facility_id)
    .fetch_all(h.pool())
    .await
    .expect("events");
    rows.into_iter()
        .map(|e| {
            (
                format!(
                    "{}/{}/{}",
                    e["pollutant_key"].as_str().unwrap_or_default(),
                    e["reporting_year"],
                    e["benchmark_type"].as_str().unwrap_or_default()
                ),
                e,
            )
        })
        .collect()
}

/// How many non-NAL copper benchmarks in force on `date` a result of `mg_per_l` exceeds,
/// counted straight from the benchmark table (independently of the engine's SQL).
async fn copper_criteria_below(h: &Harness, mg_per_l: f64, date: &str) -> i64 {
    h.scalar_i64(&format!(
        "select count(*) from benchmark
         where pollutant_key = 'copper' and benchmark_type not in ('NAL_ANNUAL', 'NAL_INSTANT', 'OTHER')
           and value_max is null
           and value * case unit when 'ug/L' then 0.001 when 'mg/L' then 1 end < {mg_per_l}
           and coalesce(effective_date, '{date}') <= '{date}'"
    ))
    .await
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn nal_rules_on_constructed_cases() {
    let h = harness("violations-cases", None).await;
    h.sync(vec![
        facilities(),
        monitoring("violations/industrial_cases.txt"),
    ])
    .await;
    let run = h
        .json("select to_jsonb(r) from violation_engine_run r order by id desc limit 1")
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "finalize");

    // A: average exactly at the copper NAL (0.0332) is not an exceedance.
    let a = events(&h, facility(&h, "900001").await).await;
    assert!(!a.contains_key("copper/2023/NAL_ANNUAL"), "{a:?}");

    // B: 0.0332 and 0.0334 average 0.0333 > 0.0332.
    let b = events(&h, facility(&h, "900002").await).await;
    let e = &b["copper/2023/NAL_ANNUAL"];
    assert!(close(num(&e["value"]), 0.0333), "{e}");
    assert_eq!(e["measure"], "annual_average");
    assert_eq!(e["sample_count"], 2);
    assert_eq!(
        e["exceedance_count"], 1,
        "only 0.0334 is above the NAL itself"
    );
    assert_eq!(e["severity"], "low");
    assert_eq!(e["nd_policy"], "zero");

    // C: one TSS result above 400: annual exceedance (average 250), no instantaneous one.
    let c = events(&h, facility(&h, "900003").await).await;
    assert!(close(num(&c["tss/2023/NAL_ANNUAL"]["value"]), 250.0));
    assert!(!c.contains_key("tss/2023/NAL_INSTANT"), "{c:?}");

    // D: two TSS results above 400: instantaneous exceedance with both samples.
    let d = events(&h, facility(&h, "900004").await).await;
    let inst = &d["tss/2023/NAL_INSTANT"];
    assert_eq!(inst["measure"], "instantaneous");
    assert_eq!(inst["sample_count"], 2);
    assert!(close(num(&inst["value"]), 500.0));
    assert!(close(num(&inst["max_ratio"]), 1.25));
    assert!(close(num(&d["tss/2023/NAL_ANNUAL"]["value"]), 475.0));

    // E: pH 5.9 and 9.1 -> instantaneous exceedance; 6.0/9.0 are inside; one 5.9 alone is not.
    let e5 = events(&h, facility(&h, "900005").await).await;
    let ph = &e5["ph/2023/NAL_INSTANT"];
    assert_eq!(ph["sample_count"], 2);
    assert!(
        (num(&ph["max_ratio"]) - 10f64.powf(0.1)).abs() < 1e-6,
        "pH ratio is 10^(distance outside 6.0-9.0): {ph}"
    );
    assert!(events(&h, facility(&h, "900006").await).await.is_empty());
    assert!(events(&h, facility(&h, "900007").await).await.is_empty());

    // F: non-detects. Zinc ND (MDL 0.5) + 0.3 against 0.26: 0.15 / 0.275 / 0.3.
    let f8 = facility(&h, "900008").await;
    let zinc = h
        .json(&format!(
            "select to_jsonb(a) from nal_annual a where facility_id = {f8} and pollutant_key = 'zinc'"
        ))
        .await;
    assert!(close(num(&zinc["avg_nd_zero"]), 0.15), "{zinc}");
    assert!(close(num(&zinc["avg_nd_half_mdl"]), 0.275), "{zinc}");
    assert!(close(num(&zinc["avg_nd_dropped"]), 0.3), "{zinc}");
    assert_eq!(zinc["exceeds"], false);
    assert_eq!(zinc["policy_sensitive"], true);
    assert_eq!(zinc["nd_count"], 1);
    // '<' results (O&G '<30' twice) are non-detects: never an instantaneous exceedance.
    // (Zinc 0.3 mg/L does exceed the aquatic-life criteria: screening events, not NAL ones.)
    let f8_events = events(&h, f8).await;
    assert!(
        f8_events
            .keys()
            .all(|k| !k.contains("NAL") && !k.starts_with("oil_and_grease")),
        "{f8_events:?}"
    );
    assert!(f8_events.values().all(|e| e["screening"] == true));

    // G: 300 ug/L and 0.3 mg/L are the same 0.3 mg/L; lbs/day is reported, not compared.
    let g = events(&h, facility(&h, "900009").await).await;
    let lead = &g["lead/2023/NAL_ANNUAL"];
    assert!(close(num(&lead["value"]), 0.3), "{lead}");
    assert_eq!(lead["sample_count"], 2);
    let not_compared = &run["notes"]["excluded"]["unitsNotCompared"];
    assert_eq!(
        not_compared,
        &json!([{ "unit": "lbs/day", "results": 1 }]),
        "{not_compared}"
    );

    // H: June 30 belongs to the year that started the previous July 1.
    let hh = events(&h, facility(&h, "900010").await).await;
    assert!(hh.contains_key("iron/2022/NAL_ANNUAL"), "{hh:?}");
    assert!(!hh.contains_key("iron/2023/NAL_ANNUAL"), "{hh:?}");

    // I: first aluminum exceedance in 2020 -> Level 1 from 2021-07-01.
    let f11 = facility(&h, "900011").await;
    let level_sql = format!(
        "select to_jsonb(l) from nal_level_current l where facility_id = {f11} and pollutant_key = 'aluminum'"
    );
    let level = h.json(&level_sql).await;
    assert_eq!(level["level"], "level_1");
    assert_eq!(level["level_1_since"], "2021-07-01");
    assert_eq!(level["level_2_since"], Value::Null);

    // J: dissolved copper 0.5 mg/L: every applicable criterion, no IGP NAL (NALs are total).
    let f12 = facility(&h, "900012").await;
    let j = events(&h, f12).await;
    assert!(j.keys().all(|k| !k.contains("NAL")), "{j:?}");
    let expected = copper_criteria_below(&h, 0.5, "2023-11-10").await;
    assert!(
        expected >= 3,
        "the reference data has several copper criteria"
    );
    let samples = h
        .scalar_i64(&format!(
            "select count(*) from violation_sample where facility_id = {f12}"
        ))
        .await;
    assert_eq!(samples, expected, "one sample row per exceeded benchmark");
    // Dissolved result vs dissolved criterion is a proper comparison; vs drinking water is not.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_sample s join benchmark b on b.id = s.benchmark_id
             where s.facility_id = {f12} and s.screening <> (b.water_type = 'drinking')"
        ))
        .await,
        0
    );

    // Later file adds aluminum results in 2021 (average 1.05 > 0.75): Level 2 from 2022-07-01;
    // and a third copper result (0.2) for 900002's 2023 year: the average rises to 0.0889
    // (ratio 2.68: low -> moderate). Only the two changed pairs are recomputed.
    h.sync(vec![monitoring("violations/industrial_cases_later.txt")])
        .await;
    let run2 = h
        .json("select to_jsonb(r) from violation_engine_run r order by id desc limit 1")
        .await;
    assert_eq!(run2["mode"], "incremental", "{run2}");
    assert_eq!(run2["pairs"], 2, "{run2}");
    assert_eq!(run2["events_new"], 1, "{run2}");
    let b = events(&h, facility(&h, "900002").await).await;
    let e = &b["copper/2023/NAL_ANNUAL"];
    assert!((num(&e["value"]) - 0.2666 / 3.0).abs() < 1e-9, "{e}");
    assert_eq!(e["severity"], "moderate");
    assert!(e["escalated_at"].is_string(), "severity rose: {e}");
    assert_eq!(e["sample_count"], 3);
    // The aquatic-life events of the same samples were updated too (0.2 mg/L against 4.8 ug/L
    // saltwater CMC: high -> critical).
    assert_eq!(b["copper/2023/CMC"]["severity"], "critical");
    assert_eq!(run2["events_escalated"], 2, "{run2}");
    assert_eq!(
        run2["events_updated"], 3,
        "NAL_ANNUAL, CMC, CCC of copper: {run2}"
    );
    let level = h.json(&level_sql).await;
    assert_eq!(level["level"], "level_2");
    assert_eq!(level["level_2_since"], "2022-07-01");
    assert_eq!(level["exceedance_years"], json!([2020, 2021]));

    // The list endpoint: who is in Level 2 for aluminum in Region 4?
    let (status, body, _) = h
        .get(
            "api-nal-levels",
            "/api/nal-levels?pollutant=aluminum&region=4&level=level_2",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["data"][0]["facility"]["id"], f11);
    assert_eq!(body["data"][0]["events"].as_array().map(Vec::len), Some(2));
    // Canonical facilities carry the name the linker matches on.
    let normalized: String =
        sqlx::query_scalar("select normalized_name from facility where id = $1")
            .bind(f11)
            .fetch_one(h.pool())
            .await
            .expect("name");
    assert_eq!(normalized, "aluminum finishing test site");
    // The facility list carries the canonical id the Level list and the events use.
    let (status, body, _) = h
        .get("api-facilities", "/api/facilities?appId=900011")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], f11);
    let (status, body, _) = h
        .get("api-nal-levels", "/api/nal-levels?pollutant=unobtainium")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "pollutant");

    // Re-running changes nothing.
    let again = engine::compute(h.pool(), &Options::new("test", NdPolicy::Zero))
        .await
        .expect("engine");
    assert_eq!(
        (
            again.pairs,
            again.events_new,
            again.events_updated,
            again.events_retracted,
            again.samples
        ),
        (0, 0, 0, 0, 0)
    );

    // ND policy is configurable: with ND = 1/2 MDL zinc exceeds (a full recompute, because the
    // fingerprint changed); back to ND = 0 the event is retracted, not deleted.
    let half = engine::compute(h.pool(), &Options::new("test", NdPolicy::HalfMdl))
        .await
        .expect("engine");
    assert_eq!(half.mode, "full");
    let z = &events(&h, f8).await["zinc/2023/NAL_ANNUAL"];
    assert_eq!(z["nd_policy"], "half_mdl");
    assert!(close(num(&z["value"]), 0.275));
    assert_eq!(z["policy_sensitive"], true);
    let zero = engine::compute(h.pool(), &Options::new("test", NdPolicy::Zero))
        .await
        .expect("engine");
    assert_eq!(zero.events_retracted, 1, "{zero:?}");
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_event where facility_id = {f8} and pollutant_key = 'zinc' and retracted_at is not null"
        ))
        .await,
        1
    );
}

/// The Region 1 file checked against an average computed here, independently of the SQL:
/// parse the TSV, classify names, convert units, average per WDID x pollutant x July-June year
/// (ND = 0), compare with the IGP annual NALs.
#[tokio::test]
async fn real_region1_rows_match_an_independent_average() {
    let h = harness("violations-region1", None).await;
    h.sync(vec![Source {
        dataset: "smarts_industrial_monitoring".into(),
        url: file_url(&shared_data(REGION1_MONITORING)),
        scope: None,
    }])
    .await;

    let nals: BTreeMap<&str, f64> = stormwater::domain::benchmarks::reference()
        .expect("reference")
        .iter()
        .filter(|b| b.benchmark_type == "NAL_ANNUAL")
        .map(|b| (b.pollutant_key, b.value.parse::<f64>().expect("NAL value")))
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_path(shared_data(REGION1_MONITORING))
        .expect("open");
    let headers = reader.headers().expect("headers").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (wdid, param, qual, result, units, date) = (
        col("WDID"),
        col("PARAMETER"),
        col("RESULT_QUALIFIER"),
        col("RESULT"),
        col("UNITS"),
        col("SAMPLE_DATE"),
    );
    let mut sums: BTreeMap<(String, &str, i32), (f64, u32)> = BTreeMap::new();
    for rec in reader.records() {
        let rec = rec.expect("record");
        let Some(m) = stormwater::domain::pollutant::classify(&rec[param]) else {
            continue;
        };
        if !nals.contains_key(m.key) {
            continue;
        }
        let d = chrono::NaiveDate::parse_from_str(&rec[date], "%m/%d/%Y").expect("date");
        let year = stormwater::violations::reporting_year(d);
        let v = if rec[qual].trim() == "ND" {
            0.0
        } else {
            let unit = stormwater::domain::units::parse_unit(&rec[units]).expect("unit");
            stormwater::domain::units::to_mg_per_l(rec[result].parse().expect("result"), &unit)
                .expect("mass unit")
        };
        let e = sums.entry((rec[wdid].to_owned(), m.key, year)).or_default();
        e.0 += v;
        e.1 += 1;
    }
    let expected: BTreeSet<String> = sums
        .iter()
        .filter(|((_, key, _), (sum, n))| sum / f64::from(*n) > nals[key])
        .map(|((w, key, y), _)| format!("{w}/{key}/{y}"))
        .collect();
    let got: Vec<String> = sqlx::query_scalar(
        "select l.source_key || '/' || e.pollutant_key || '/' || e.reporting_year
         from violation_event e join facility_link l on l.facility_id = e.facility_id
         where e.benchmark_type = 'NAL_ANNUAL' and e.retracted_at is null",
    )
    .fetch_all(h.pool())
    .await
    .expect("events");
    let got: BTreeSet<String> = got
        .into_iter()
        .map(|s| s.split_once('|').map(|(_, w)| w.to_owned()).unwrap_or(s))
        .collect();
    assert_eq!(got, expected);
    // The file has two such exceedances (aluminum 1.4 and iron 3.2 mg/L, 2015-12-03), and
    // every evaluated facility-year has its statistics row.
    assert_eq!(expected.len(), 2, "{expected:?}");
    assert_eq!(
        h.scalar_i64("select count(*) from nal_annual").await,
        sums.len() as i64
    );
    // The single pH 5 of 2015 is one result outside the range: not an exceedance.
    assert_eq!(
        h.scalar_i64("select count(*) from violation_event where pollutant_key = 'ph'")
            .await,
        0
    );
    // Level 1 for both parameters from 2016-07-01.
    assert_eq!(
        h.scalar_i64(
            "select count(*) from nal_level_current where level = 'level_1' and level_1_since = '2016-07-01'"
        )
        .await,
        2
    );
    // Drilldown through the API: the aluminum event and its one source row.
    let id = h
        .scalar_i64("select id from violation_event where pollutant_key = 'aluminum'")
        .await;
    let (status, body, _) = h
        .get("api-violation", &format!("/api/violations/{id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let ev = &body["data"];
    assert_eq!(ev["benchmark"]["source"], "IGP 2014-0057-DWQ");
    assert_eq!(ev["annual"]["sampleCount"], 1);
    assert_eq!(ev["samples"].as_array().map(Vec::len), Some(1));
    let row = ev["samples"][0]["sourceRowId"].as_i64().expect("row id");
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from smarts_industrial_monitoring
             where id = {row} and parameter = 'Aluminum, Total Recoverable' and result = 1.4"
        ))
        .await,
        1,
        "the sample points at its source row"
    );
    assert!(body["meta"]["freshness"].is_object());
    let (status, _, _) = h.get("api-violation", "/api/violations/999999").await;
    assert_eq!(status, 404);

    // The facility's page on real rows: its monitoring summary counts the file's rows of its
    // WDID, and its timeline and events list the two exceedances.
    let facility = ev["facility"]["id"].as_i64().expect("facility id");
    let key: String = sqlx::query_scalar(
        "select source_key from facility_link where facility_id = $1 and status = 'linked'",
    )
    .bind(facility)
    .fetch_one(h.pool())
    .await
    .expect("link");
    let facility_wdid = key.split('|').nth(1).expect("APP_ID|WDID").to_owned();
    let rows_of_wdid = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_path(shared_data(REGION1_MONITORING))
        .expect("open")
        .records()
        .filter(|r| r.as_ref().expect("record")[wdid] == facility_wdid)
        .count() as i64;
    let (status, complete, _) = h
        .get(
            "api-facility-complete",
            &format!("/api/facilities/{facility}/complete"),
        )
        .await;
    assert_eq!(status, 200, "{complete}");
    let c = &complete["data"];
    assert_eq!(c["smarts"]["monitoring"]["results"], rows_of_wdid);
    let nal_events: Vec<&str> = c["violationEvents"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["benchmarkType"] == "NAL_ANNUAL")
        .filter_map(|e| e["pollutant"].as_str())
        .collect();
    assert_eq!(nal_events.len(), 2, "{nal_events:?}");
    assert!(nal_events.contains(&"aluminum") && nal_events.contains(&"iron"));
    let levels = c["nal"]["levels"].as_array().expect("levels");
    assert!(levels.iter().all(|l| l["level1Since"] == "2016-07-01"));
    let (_, timeline, _) = h
        .get(
            "api-facility-timeline",
            &format!("/api/facilities/{facility}/timeline?kind=exceedance"),
        )
        .await;
    assert_eq!(
        timeline["data"].as_array().map(Vec::len),
        c["violationEvents"]["total"].as_u64().map(|n| n as usize)
    );
    assert!(
        timeline["data"]
            .as_array()
            .expect("feed")
            .iter()
            .all(|x| x["date"] == "2015-12-03")
    );
}

#[tokio::test]
async fn review_workflow_needs_credentials_refuses_bad_transitions_and_audits() {
    let h = harness("violations-review", None).await;
    h.sync(vec![monitoring("violations/industrial_cases.txt")])
        .await;
    let id = h
        .scalar_i64("select min(id) from violation_event where benchmark_type = 'NAL_ANNUAL'")
        .await;
    let path = format!("/api/violations/{id}/status");
    let key = stormwater::auth::create_key(h.pool(), "reviewer", "test")
        .await
        .expect("key");
    let send = |body: Value, key: Option<&str>| {
        let path = path.clone();
        let key = key.map(str::to_owned);
        let h = &h;
        async move {
            h.send(
                "api-violation-status",
                "PATCH",
                &path,
                Some(body),
                key.as_deref(),
            )
            .await
        }
    };

    let (s, b) = send(json!({"status": "under_review"}), None).await;
    assert_eq!(s, 401, "{b}");
    let (s, _) = send(json!({"status": "under_review"}), Some("sw_wrong")).await;
    assert_eq!(s, 401);
    let (s, b) = send(json!({"status": "resolved"}), Some(&key)).await;
    assert_eq!(s, 409, "open cannot jump to resolved: {b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("from open to resolved")),
        "{b}"
    );
    let (s, b) = send(json!({"status": "closed"}), Some(&key)).await;
    assert_eq!((s, b["error"]["parameter"].as_str()), (400, Some("status")));
    let (s, b) = send(
        json!({"status": "under_review", "notes": "checking the lab report"}),
        Some(&key),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["status"], "under_review");
    assert_eq!(b["data"]["changedBy"], "key:reviewer");
    let (s, _) = send(
        json!({"status": "resolved", "expectedStatus": "open"}),
        Some(&key),
    )
    .await;
    assert_eq!(s, 409, "a stale expectedStatus is a conflict");
    let (s, _) = send(json!({"status": "resolved"}), Some(&key)).await;
    assert_eq!(s, 200);
    let (s, _) = send(json!({"status": "dismissed"}), Some(&key)).await;
    assert_eq!(s, 409, "resolved must be reopened before dismissing");
    let (s, _) = h
        .send(
            "api-violation-status",
            "PATCH",
            "/api/violations/987654/status",
            Some(json!({"status": "under_review"})),
            Some(&key),
        )
        .await;
    assert_eq!(s, 404);

    let (_, body, _) = h
        .get("api-violation", &format!("/api/violations/{id}"))
        .await;
    assert_eq!(body["data"]["status"], "resolved");
    let history = body["data"]["statusHistory"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["notes"], "checking the lab report");
    assert_eq!(
        h.scalar_i64("select count(*) from audit_log where action = 'violation_event.status'")
            .await,
        2
    );
    // A recompute keeps the review status.
    engine::compute(
        h.pool(),
        &Options {
            force_full: true,
            ..Options::new("test", NdPolicy::Zero)
        },
    )
    .await
    .expect("engine");
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_event where id = {id} and status = 'resolved'"
        ))
        .await,
        1
    );
}

/// `POST /api/subscriptions` with `body`, authenticated with `key` when given.
async fn create_subscription(h: &Harness, body: Value, key: Option<&str>) -> (u16, Value) {
    h.send(
        "api-subscriptions",
        "POST",
        "/api/subscriptions",
        Some(body),
        key,
    )
    .await
}

/// A local webhook receiver: every request's headers and body.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>) {
    let seen: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                store.lock().expect("lock").push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn webhook_alerts_are_signed_and_sent_once() {
    let mut h = harness("violations-alerts", None).await;
    // The receiver listens on loopback: this test opts in to it (production never does).
    h.allow_outbound("127.0.0.1");
    let (url, seen) = webhook_receiver().await;
    let key = stormwater::auth::create_key(h.pool(), "watcher", "test")
        .await
        .expect("key");
    let secret = "a-long-enough-shared-secret";
    let sub = json!({
        "name": "Region 4 NAL exceedances",
        "mode": "jurisdiction",
        "regions": ["4"],
        "delivery": "webhook",
        "webhookUrl": url,
        "webhookSecret": secret,
    });
    let (s, b) = create_subscription(&h, sub.clone(), None).await;
    assert_eq!(s, 401, "{b}");
    let mut bad = sub.clone();
    bad["webhookUrl"] = json!("http://example.com/hook");
    let (s, b) = create_subscription(&h, bad, Some(&key)).await;
    assert_eq!(
        (s, b["error"]["parameter"].as_str()),
        (400, Some("webhookUrl")),
        "{b}"
    );
    let (s, b) = create_subscription(&h, sub, Some(&key)).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["data"]["hasWebhookSecret"], true);
    assert!(
        b["data"].get("webhookSecret").is_none(),
        "the secret is never returned"
    );
    let region_sub = b["data"]["id"].clone();
    // A 1 km buffer around the Oakland test site (900012), high severity and up only.
    let buffer = json!({
        "name": "Oakland site",
        "mode": "buffer",
        "center": {"lat": 37.8044, "lon": -122.2712},
        "radiusM": 1000.0,
        "minSeverity": "high",
        "delivery": "webhook",
        "webhookUrl": url,
        "webhookSecret": secret,
    });
    let (s, b) = create_subscription(&h, buffer, Some(&key)).await;
    assert_eq!(s, 201, "{b}");
    let buffer_sub = b["data"]["id"].clone();
    let mut bad_area = json!({"name": "x", "mode": "buffer", "center": {"lat": 95.0, "lon": 0.0},
                             "radiusM": 10.0, "delivery": "email", "email": "a@example.org"});
    let (s, b) = create_subscription(&h, bad_area.clone(), Some(&key)).await;
    assert_eq!(
        (s, b["error"]["parameter"].as_str()),
        (400, Some("center")),
        "{b}"
    );
    bad_area["mode"] = json!("polygon");
    let (s, b) = create_subscription(&h, bad_area, Some(&key)).await;
    assert_eq!(
        (s, b["error"]["parameter"].as_str()),
        (400, Some("polygon")),
        "{b}"
    );

    // Sync: finalize runs the engine and queues alert-dispatch, which the runner then plays.
    h.sync(vec![
        facilities(),
        monitoring("violations/industrial_cases.txt"),
    ])
    .await;
    let region4 = h
        .scalar_i64(
            "select count(*) from violation_event e join facility f on f.id = e.facility_id
             where f.region = '4' and e.retracted_at is null",
        )
        .await;
    assert!(
        region4 >= 3,
        "copper, TSS (annual + instantaneous), aluminum in region 4"
    );
    let oakland = h
        .scalar_i64(
            "select count(*) from violation_event e join facility f on f.id = e.facility_id
             where f.name = 'Bay Copper Test Site' and severity_rank(e.severity) >= 3",
        )
        .await;
    assert!(
        oakland >= 1,
        "dissolved copper 0.5 mg/L is far above the CMC"
    );
    let expected = region4 + oakland;
    let received = seen.lock().expect("lock").clone();
    assert_eq!(received.len() as i64, expected);
    let mut ids = BTreeSet::new();
    for (headers, body) in &received {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let ts: i64 = header("x-stormwater-timestamp").parse().expect("timestamp");
        assert!(stormwater::alerts::deliver::verify(
            secret.as_bytes(),
            ts,
            body.as_bytes(),
            &header("x-stormwater-signature"),
        ));
        assert!(!stormwater::alerts::deliver::verify(
            b"another-secret-entirely",
            ts,
            body.as_bytes(),
            &header("x-stormwater-signature"),
        ));
        let v: Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(v["alert"]["trigger"], "new");
        let region = if v["alert"]["subscription"]["id"] == region_sub {
            "4"
        } else {
            assert_eq!(v["alert"]["subscription"]["id"], buffer_sub);
            "2"
        };
        assert_eq!(v["alert"]["event"]["region"], region);
        ids.insert(v["alert"]["event"]["id"].as_i64().expect("event id"));
    }
    assert_eq!(ids.len() as i64, expected, "one alert per event");
    assert_eq!(
        h.scalar_i64("select count(*) from alert where status = 'sent'")
            .await,
        expected
    );

    // A second run (same files: skipped) sends nothing new.
    h.sync(vec![
        facilities(),
        monitoring("violations/industrial_cases.txt"),
    ])
    .await;
    let dispatched = stormwater::alerts::dispatch::dispatch(h.pool(), &h.ctx.webhooks, None)
        .await
        .expect("dispatch");
    assert_eq!((dispatched.created, dispatched.sent), (0, 0));
    assert_eq!(seen.lock().expect("lock").len() as i64, expected);

    // New data: a new region-4 event (aluminum 2021) and two escalations (copper at 900002)
    // alert exactly once each; the buffer subscription around Oakland gets none of them.
    h.sync(vec![monitoring("violations/industrial_cases_later.txt")])
        .await;
    let after = seen.lock().expect("lock").clone();
    let bodies: Vec<Value> = after[received.len()..]
        .iter()
        .map(|(_, b)| serde_json::from_str(b).expect("JSON"))
        .collect();
    let mut got: Vec<(String, String, String)> = bodies
        .iter()
        .map(|v| {
            let e = &v["alert"]["event"];
            (
                v["alert"]["trigger"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["pollutant"].as_str().unwrap_or_default().to_owned(),
                e["benchmarkType"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    got.sort();
    let t = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        got,
        vec![
            t("escalated", "copper", "CMC"),
            t("escalated", "copper", "NAL_ANNUAL"),
            t("new", "aluminum", "NAL_ANNUAL"),
        ]
    );
    let new = bodies
        .iter()
        .find(|v| v["alert"]["trigger"] == "new")
        .expect("new alert");
    assert_eq!(new["alert"]["event"]["reportingYear"], 2021);
    assert_eq!(new["alert"]["event"]["level"], "level_2");
    assert!(
        bodies
            .iter()
            .all(|v| v["alert"]["subscription"]["id"] == region_sub)
    );

    let (s, list) = h
        .send(
            "api-subscriptions",
            "GET",
            "/api/subscriptions",
            None,
            Some(&key),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        h.scalar_i64("select count(*) from audit_log where action = 'subscription.create'")
            .await,
        2
    );
}

/// eSMR results: every applicable criterion; influent and calculated rows and unreadable units
/// are excluded with their reason; a non-detect never exceeds. Then, once a manual link puts the
/// eSMR facility and a SMARTS application under one canonical facility, the eSMR exceedances are
/// reported as possible duplicates of the SMARTS regulatory violation, not merged.
#[tokio::test]
async fn esmr_results_and_duplicates_across_linked_facilities() {
    let h = harness("violations-esmr", None).await;
    h.sync(vec![
        facilities(),
        monitoring("violations/industrial_cases.txt"),
        Source {
            dataset: "smarts_violations".into(),
            url: file_url(&fixture("violations/smarts_violations.csv")),
            scope: None,
        },
        Source {
            dataset: "esmr".into(),
            url: file_url(&fixture("violations/esmr_cases.csv")),
            scope: Some("2024".into()),
        },
    ])
    .await;
    let plant = h
        .scalar_i64(
            "select facility_id from facility_link where source = 'esmr' and source_key = '990001'",
        )
        .await;
    let expected = copper_criteria_below(&h, 0.05, "2024-01-10").await;
    assert!(expected >= 3);
    // One effluent result of 50 ug/L: one sample per exceeded criterion, all on 2024-01-10.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_sample where facility_id = {plant} and detected_on = '2024-01-10'"
        ))
        .await,
        expected
    );
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_sample where facility_id = {plant}"
        ))
        .await,
        expected,
        "influent, calculated and non-detect rows produce nothing"
    );
    let run = h
        .json("select to_jsonb(r) from violation_engine_run r order by id desc limit 1")
        .await;
    let reasons: BTreeMap<String, i64> = run["notes"]["excluded"]["byReason"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter(|r| r["source"] == "esmr")
        .map(|r| {
            (
                r["reason"].as_str().unwrap_or_default().to_owned(),
                r["results"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        BTreeMap::from([
            ("calculated result".to_owned(), 1),
            ("influent location".to_owned(), 1),
            ("unknown unit".to_owned(), 1),
        ])
    );
    // Total recoverable vs dissolved criteria is a screening comparison.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_event where facility_id = {plant} and not screening"
        ))
        .await,
        0
    );
    assert_eq!(
        h.scalar_i64("select count(*) from violation_duplicate d join violation_event e on e.id = d.event_id where e.source = 'esmr'")
            .await,
        0,
        "unlinked facilities have no duplicates"
    );

    // A manual link: the plant's eSMR records belong to the gravel yard's canonical facility.
    let gravel = facility(&h, "900004").await;
    // Through the reviewers' endpoint: the decision is stored, the linker moves the record,
    // and the engine recomputes both facilities.
    let key = stormwater::auth::create_key(h.pool(), "reviewer", "test")
        .await
        .expect("key");
    let (status, body) = h
        .send(
            "api-facility-links",
            "POST",
            &format!("/api/facilities/{gravel}/links"),
            Some(json!({ "action": "link", "source": "esmr", "sourceKey": "990001" })),
            Some(&key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["linkedTo"], gravel);
    assert!(
        body["meta"]["violationEvents"]["retracted"]
            .as_i64()
            .unwrap()
            >= 2,
        "the plant's events are retracted: {body}"
    );
    let esmr_events = h
        .scalar_i64(&format!(
            "select count(*) from violation_event where facility_id = {gravel} and source = 'esmr' and retracted_at is null"
        ))
        .await;
    assert!(esmr_events >= 2, "CMC and CCC at least");
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_event where facility_id = {plant} and retracted_at is null"
        ))
        .await,
        0,
        "the old facility's events are retracted, not deleted"
    );
    // The 'Effluent' violation of 2024-01-20 is within 30 days of the 2024-01-10 copper result
    // but does not name copper: score 0.6, one row per eSMR event; the TSS events keep their 0.9.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_duplicate d join violation_event e on e.id = d.event_id
             where e.source = 'esmr' and d.facility_id = {gravel} and d.score = 0.6::real"
        ))
        .await,
        esmr_events
    );
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_duplicate d join violation_event e on e.id = d.event_id
             where e.source = 'smarts_industrial' and d.facility_id = {gravel} and d.score = 0.9::real"
        ))
        .await,
        2
    );
    // Reported through the drilldown, both events still there.
    let id = h
        .scalar_i64(&format!(
            "select min(e.id) from violation_event e where e.facility_id = {gravel} and e.source = 'esmr' and e.retracted_at is null"
        ))
        .await;
    let (_, body, _) = h
        .get("api-violation", &format!("/api/violations/{id}"))
        .await;
    let dups = body["data"]["possibleDuplicates"].as_array().expect("dups");
    assert_eq!(dups.len(), 1);
    assert_eq!(dups[0]["smartsViolationId"], "990001");
}

/// Email delivery through the real dispatch path: one message per alert over SMTP, with the
/// subject and the figures a reader needs; a second dispatch sends nothing.
#[tokio::test]
async fn email_alerts_go_out_over_smtp_once() {
    let h = harness("violations-email", None).await;
    let (port, sessions) = support::smtp_sink().await;
    let key = stormwater::auth::create_key(h.pool(), "resident", "test")
        .await
        .expect("key");
    let sub = json!({
        "name": "Alameda County, critical",
        "mode": "jurisdiction",
        "counties": ["Alameda County"],
        "minSeverity": "critical",
        "delivery": "email",
        "email": "resident@example.org",
    });
    let (s, b) = create_subscription(&h, sub, Some(&key)).await;
    assert_eq!(s, 201, "{b}");
    h.sync(vec![
        facilities(),
        monitoring("violations/industrial_cases.txt"),
    ])
    .await;
    // The runner's alert mapping had no SMTP settings: the alerts wait as failed, with the reason.
    assert_eq!(
        h.scalar_i64(
            "select count(*) from alert where status = 'failed' and last_error like '%SMTP is not configured%'"
        )
        .await,
        h.scalar_i64("select count(*) from alert").await
    );
    let critical = h
        .scalar_i64(
            "select count(*) from violation_event e join facility f on f.id = e.facility_id
             where f.county = 'Alameda' and e.severity = 'critical' and e.retracted_at is null",
        )
        .await;
    assert!(critical >= 1);
    let smtp = stormwater::alerts::deliver::SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: stormwater::alerts::deliver::SmtpTls::None,
        username: None,
        password: None,
        from: "Stormwater Watch <alerts@example.org>".into(),
    };
    let done = stormwater::alerts::dispatch::dispatch(h.pool(), &h.ctx.webhooks, Some(&smtp))
        .await
        .expect("dispatch");
    assert_eq!((done.created, done.sent), (0, critical as u64), "{done:?}");
    // Sessions are recorded when the client hangs up; give the sink a moment.
    for _ in 0..50 {
        if sessions.lock().expect("lock").len() as i64 == critical {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mails = sessions.lock().expect("lock").clone();
    assert_eq!(mails.len() as i64, critical);
    for m in &mails {
        assert!(m.contains("RCPT TO:<resident@example.org>"), "{m}");
        assert!(
            m.contains("Subject: [Stormwater Watch] new critical: Copper"),
            "{m}"
        );
        assert!(m.contains("Facility: Bay Copper Test Site"), "{m}");
        assert!(m.contains("Screening comparison: false"), "{m}");
    }
    let again = stormwater::alerts::dispatch::dispatch(h.pool(), &h.ctx.webhooks, Some(&smtp))
        .await
        .expect("dispatch");
    assert_eq!((again.created, again.sent, again.failed), (0, 0, 0));
}

/// The engine's watermark never passes a sync run that is still importing: its rows would be
/// skipped by every later incremental run.
#[tokio::test]
async fn watermark_stays_below_a_running_sync() {
    let h = harness("violations-watermark", None).await;
    h.sync(vec![monitoring("violations/industrial_cases.txt")])
        .await;
    let running = stormwater::repo::sync::create_run(h.pool(), "test")
        .await
        .expect("run");
    let watermark = "select min(last_run_id) from violation_engine_state";
    engine::compute(h.pool(), &Options::new("test", NdPolicy::Zero))
        .await
        .expect("engine");
    assert_eq!(h.scalar_i64(watermark).await, running - 1);
    // Even when asked for a later run explicitly.
    engine::compute(
        h.pool(),
        &Options {
            up_to_run: Some(running + 5),
            ..Options::new("test", NdPolicy::Zero)
        },
    )
    .await
    .expect("engine");
    assert_eq!(h.scalar_i64(watermark).await, running - 1);
    sqlx::query("update sync_run set status = 'succeeded', finished_at = now() where id = $1")
        .bind(running)
        .execute(h.pool())
        .await
        .expect("close run");
    engine::compute(h.pool(), &Options::new("test", NdPolicy::Zero))
        .await
        .expect("engine");
    assert_eq!(h.scalar_i64(watermark).await, running);
}
