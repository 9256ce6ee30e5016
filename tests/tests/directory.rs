//! The facility directory and the sorts of every list, on generated statewide files synced
//! through the pipeline: each directory item's counts, penalties and dates checked against the
//! source CSVs (read with the csv crate) through the records the item says it links; every
//! filter checked against those independent figures; every list walked under every sort the
//! OpenAPI document declares, each record once, in order.

mod support;

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use support::{Harness, Manifest, column_values, harness};

fn present(raw: &str) -> bool {
    !matches!(raw, "" | "NA" | "NaN")
}

fn money(raw: &str) -> f64 {
    raw.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .unwrap_or(0.0)
}

/// An ISO date of the files, or none (missing or not a date: the importer nulls those).
fn day(raw: &str) -> Option<String> {
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .map(|d| d.to_string())
}

/// `(APP_ID or "", WDID)`: how a SMARTS row is matched to a linked record (rows without a
/// WDID match none).
fn key(app: &str, wdid: &str) -> Option<(String, String)> {
    present(wdid).then(|| {
        (
            if present(app) { app } else { "" }.to_owned(),
            wdid.to_owned(),
        )
    })
}

async fn get(h: &Harness, path: &str) -> Value {
    let (function, _) = stormwater::api::routes::resolve("GET", path.split('?').next().unwrap())
        .unwrap_or_else(|| panic!("no route for {path}"));
    let (status, body, _) = h.get(function.name, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Every page of a list, following `nextCursor`.
async fn walk(h: &Harness, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            Some(c) => with(path, &format!("cursor={c}")),
            None => path.to_owned(),
        };
        let body = get(h, &url).await;
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

/// What the files say about one directory item, through the keys of its linked records.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    violations: i64,
    enforcement: i64,
    inspections: i64,
    assessed: f64,
    paid: f64,
    last_violation: Option<String>,
    last_inspection: Option<String>,
    last_enforcement: Option<String>,
    last_sample: Option<String>,
}

struct Files {
    industrial: HashSet<(String, String)>,
    construction: HashSet<(String, String)>,
    violations: Vec<Vec<String>>,
    enforcement: Vec<Vec<String>>,
    inspections: Vec<Vec<String>>,
    samples: Vec<Vec<String>>,
}

fn read_files(manifest: &Manifest, dir: &std::path::Path) -> Files {
    let p = |d: &str| manifest.path(dir, d);
    let keys = |d: &str| {
        column_values(&p(d), &["APP_ID", "WDID"])
            .into_iter()
            .filter_map(|r| key(&r[0], &r[1]))
            .collect::<HashSet<_>>()
    };
    let mut samples = column_values(
        &p("smarts_industrial_monitoring"),
        &["APP_ID", "WDID", "SAMPLE_DATE"],
    );
    samples.extend(column_values(
        &p("smarts_construction_monitoring"),
        &["APP_ID", "WDID", "SAMPLE_DATE"],
    ));
    Files {
        industrial: keys("smarts_industrial_facilities"),
        construction: keys("smarts_construction_facilities"),
        violations: column_values(
            &p("smarts_violations"),
            &["APP_ID", "WDID", "OCCURRENCE_DATE", "DISCOVERY_DATE"],
        ),
        enforcement: column_values(
            &p("smarts_enforcement_actions"),
            &[
                "APP_ID",
                "WDID",
                "ISSUANCE_DATE",
                "TOTAL_ASSESSMENT",
                "RECEIVED_AMOUNT",
            ],
        ),
        inspections: column_values(
            &p("smarts_inspections"),
            &["APP_ID", "WDID", "INSPECTION_DATE"],
        ),
        samples,
    }
}

/// The SMARTS keys of an item's linked records.
fn item_keys(item: &Value) -> Vec<(String, String)> {
    ["smartsIndustrial", "smartsConstruction"]
        .iter()
        .flat_map(|k| item["records"][k].as_array().unwrap().iter())
        .map(|r| {
            (
                r["appId"].as_str().unwrap_or("").to_owned(),
                r["wdid"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn expected(files: &Files, keys: &HashSet<(String, String)>) -> Expected {
    let mine = |r: &Vec<String>| key(&r[0], &r[1]).is_some_and(|k| keys.contains(&k));
    let mut e = Expected::default();
    for r in files.violations.iter().filter(|r| mine(r)) {
        e.violations += 1;
        let d = day(&r[2]).or_else(|| day(&r[3]));
        e.last_violation = e.last_violation.max(d);
    }
    for r in files.enforcement.iter().filter(|r| mine(r)) {
        e.enforcement += 1;
        e.last_enforcement = e.last_enforcement.take().max(day(&r[2]));
        e.assessed += money(&r[3]);
        e.paid += money(&r[4]);
    }
    for r in files.inspections.iter().filter(|r| mine(r)) {
        e.inspections += 1;
        e.last_inspection = e.last_inspection.take().max(day(&r[2]));
    }
    for r in files.samples.iter().filter(|r| mine(r)) {
        e.last_sample = e.last_sample.take().max(day(&r[2]));
    }
    e
}

fn served(item: &Value) -> Expected {
    let date = |k: &str| item["dates"][k].as_str().map(str::to_owned);
    Expected {
        violations: item["counts"]["smartsViolations"].as_i64().unwrap(),
        enforcement: item["counts"]["enforcementActions"].as_i64().unwrap(),
        inspections: item["counts"]["inspections"].as_i64().unwrap(),
        assessed: item["penalties"]["assessed"].as_f64().unwrap(),
        paid: item["penalties"]["paid"].as_f64().unwrap(),
        last_violation: date("lastViolation"),
        last_inspection: date("lastInspection"),
        last_enforcement: date("lastEnforcement"),
        // eSMR samples count too; the files' eSMR places link by place id, checked apart.
        last_sample: date("lastSample"),
    }
}

fn id(item: &Value) -> i64 {
    item["id"].as_i64().unwrap()
}

fn ids(items: &[Value]) -> HashSet<i64> {
    items.iter().map(id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_matches_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = support::generate(dir.path(), 23, "0.004");
    let h = harness("directory", Some(5_000)).await;
    h.sync(manifest.sources(dir.path())).await;
    let files = read_files(&manifest, dir.path());

    let all = walk(&h, "/api/facilities?limit=1000").await;
    assert_eq!(all.len(), ids(&all).len(), "an item served twice");
    let total = get(&h, "/api/facilities?limit=1").await["page"]["total"]
        .as_i64()
        .unwrap();
    assert_eq!(all.len() as i64, total);

    // Every record key of both facility files belongs to exactly one item, and no item has a
    // key the files lack.
    let mut owner: HashMap<(String, String), i64> = HashMap::new();
    for item in &all {
        for k in item_keys(item) {
            assert!(owner.insert(k.clone(), id(item)).is_none(), "{k:?} twice");
        }
    }
    let file_keys: HashSet<_> = files
        .industrial
        .union(&files.construction)
        .cloned()
        .collect();
    assert_eq!(owner.keys().cloned().collect::<HashSet<_>>(), file_keys);
    for item in &all {
        let s = &item["sources"];
        assert_eq!(
            s["smartsIndustrial"],
            !item["records"]["smartsIndustrial"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s["smartsConstruction"],
            !item["records"]["smartsConstruction"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    let esmr: Vec<&Value> = all
        .iter()
        .filter(|i| i["sources"]["esmr"] == true)
        .collect();
    let places: HashSet<String> =
        column_values(&manifest.path(dir.path(), "esmr"), &["facility_place_id"])
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
    let served_places: HashSet<String> = esmr
        .iter()
        .flat_map(|i| i["permitIds"]["esmrPlaceIds"].as_array().unwrap())
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        served_places, places,
        "every eSMR place is in the directory"
    );

    // Each item's counts, penalties and dates are what the files say about its records.
    let mut want: HashMap<i64, Expected> = HashMap::new();
    for item in &all {
        let keys: HashSet<_> = item_keys(item).into_iter().collect();
        let mut e = expected(&files, &keys);
        let got = served(item);
        if item["sources"]["esmr"] == true {
            // eSMR samples are dated too: the latest sample is at least the SMARTS one.
            assert!(got.last_sample >= e.last_sample, "{item}");
            e.last_sample = got.last_sample.clone();
        }
        assert!((got.assessed - e.assessed).abs() < 0.005, "{item}");
        assert!((got.paid - e.paid).abs() < 0.005, "{item}");
        e.assessed = got.assessed;
        e.paid = got.paid;
        assert_eq!(got, e, "{item}");
        let activity = [
            &e.last_sample,
            &e.last_violation,
            &e.last_inspection,
            &e.last_enforcement,
        ]
        .into_iter()
        .flatten()
        .max()
        .cloned();
        assert_eq!(
            item["dates"]["lastActivity"].as_str().map(str::to_owned),
            activity
        );
        want.insert(id(item), e);
    }
    let with_enforcement = want.values().filter(|e| e.enforcement > 0).count();
    assert!(
        with_enforcement > 0,
        "the generated files have enforced facilities"
    );
    assert_eq!(
        want.values().map(|e| e.violations).sum::<i64>(),
        files
            .violations
            .iter()
            .filter(|r| key(&r[0], &r[1]).is_some_and(|k| owner.contains_key(&k)))
            .count() as i64
    );

    // Filters: each one is the subset the independent figures predict.
    let check = async |query: &str, keep: &dyn Fn(&Value, &Expected) -> bool| {
        let got = walk(&h, &format!("/api/facilities?limit=1000&{query}")).await;
        let expect: HashSet<i64> = all
            .iter()
            .filter(|i| keep(i, &want[&id(i)]))
            .map(id)
            .collect();
        assert_eq!(ids(&got), expect, "{query}");
        assert_eq!(got.len(), expect.len(), "{query}");
        // The total (stored per area when the area is the only filter) says the same.
        let first = get(&h, &format!("/api/facilities?limit=1&{query}")).await;
        assert_eq!(first["page"]["total"], expect.len() as i64, "{query}");
        expect.len()
    };
    let events = |i: &Value| i["counts"]["events"].as_i64().unwrap();
    assert!(check("hasEnforcement=true", &|_, e| e.enforcement > 0).await > 0);
    check("hasEnforcement=false", &|_, e| e.enforcement == 0).await;
    assert!(
        check("hasViolations=true", &|i, e| e.violations > 0
            || events(i) > 0)
        .await
            > 0
    );
    // The seed's cross-dataset question is one request.
    check("hasViolations=true&hasEnforcement=true", &|i, e| {
        (e.violations > 0 || events(i) > 0) && e.enforcement > 0
    })
    .await;
    let mut inspected: Vec<&String> = want
        .values()
        .filter_map(|e| e.last_inspection.as_ref())
        .collect();
    inspected.sort();
    let since = inspected[inspected.len() / 2].clone();
    assert!(
        check(&format!("inspectedSince={since}"), &|_, e| {
            e.last_inspection.as_ref().is_some_and(|d| *d >= since)
        })
        .await
            > 0
    );
    for (source, field) in [
        ("smarts_industrial", "smartsIndustrial"),
        ("smarts_construction", "smartsConstruction"),
        ("esmr", "esmr"),
    ] {
        assert!(
            check(&format!("source={source}"), &|i, _| i["sources"][field]
                == true)
            .await
                > 0,
            "{source}"
        );
    }
    let county = all
        .iter()
        .find_map(|i| i["county"].as_str())
        .unwrap()
        .to_owned();
    check(
        &format!("county={}", county.to_uppercase().replace(' ', "%20")),
        &|i, _| i["county"].as_str() == Some(county.as_str()),
    )
    .await;
    // A region, and a county with its region, are counted from the stored area counts too.
    let region = all
        .iter()
        .find_map(|i| i["region"].as_str())
        .unwrap()
        .to_owned();
    assert!(
        check(&format!("region={}", region.to_lowercase()), &|i, _| {
            i["region"].as_str() == Some(region.as_str())
        })
        .await
            > 0
    );
    check(
        &format!("county={}&region={region}", county.replace(' ', "%20")),
        &|i, _| {
            i["county"].as_str() == Some(county.as_str())
                && i["region"].as_str() == Some(region.as_str())
        },
    )
    .await;
    check("county=Nowhere", &|_, _| false).await;
    let polluted = all
        .iter()
        .find_map(|i| i["pollutants"].as_array().and_then(|p| p.first()))
        .and_then(Value::as_str)
        .expect("the generated files exceed a benchmark")
        .to_owned();
    check(&format!("pollutant={polluted}"), &|i, _| {
        i["pollutants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == polluted.as_str())
    })
    .await;
    check("minLevel=level_1", &|i, _| i["nalLevel"] != "baseline").await;
    check("minLevel=level_2", &|i, _| i["nalLevel"] == "level_2").await;
    let wdid = all
        .iter()
        .find_map(|i| i["permitIds"]["wdids"][0].as_str())
        .unwrap()
        .to_owned();
    check(&format!("wdid={}", wdid.replace(' ', "%20")), &|i, _| {
        i["permitIds"]["wdids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == wdid.as_str())
    })
    .await;

    // Triage for a notice letter: a window, ongoing exceedances, no enforcement in the window.
    let body = get(&h, "/api/facilities?limit=1").await;
    let start = body["meta"]["triage"]["windowStart"]
        .as_str()
        .unwrap()
        .to_owned();
    let today = chrono::Utc::now().date_naive();
    assert_eq!(
        start,
        today
            .checked_sub_months(chrono::Months::new(60))
            .unwrap()
            .to_string()
    );
    let ongoing_from = body["meta"]["triage"]["ongoingFromReportingYear"]
        .as_i64()
        .unwrap();
    let exceeded_since = |i: &Value, s: &str| {
        i["dates"]["lastExceedance"]
            .as_str()
            .is_some_and(|d| d >= s)
    };
    let no_enforcement_since =
        |e: &Expected, s: &str| e.last_enforcement.as_deref().is_none_or(|d| d < s);
    for window in [start.clone(), "2019-07-01".to_owned()] {
        let w = window.clone();
        check(
            &format!("windowStart={w}&exceededInWindow=true&enforcedInWindow=false"),
            &|i, e| exceeded_since(i, &w) && no_enforcement_since(e, &w),
        )
        .await;
        check(
            &format!("windowStart={w}&enforcedInWindow=true"),
            &|_, e| !no_enforcement_since(e, &w),
        )
        .await;
    }
    check("ongoing=true", &|i, _| {
        i["dates"]["lastExceedanceReportingYear"]
            .as_i64()
            .is_some_and(|y| y >= ongoing_from)
    })
    .await;
    check("ongoing=false", &|i, _| {
        i["dates"]["lastExceedanceReportingYear"]
            .as_i64()
            .is_none_or(|y| y < ongoing_from)
    })
    .await;
    // The reporting year of the latest event is that of its latest sample (July to June).
    for i in &all {
        assert_eq!(
            i["dates"]["lastExceedanceReportingYear"].as_i64(),
            reporting_year_of(i),
            "{i}"
        );
    }
    let (status, body, _) = h
        .get("api-facilities", "/api/facilities?windowStart=2999-01-01")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "windowStart");

    check_violation_feed(&h, &manifest, dir.path(), &files, &all).await;
    check_dashboard(&h, &manifest, dir.path(), &all, &want).await;
    check_complete(&h, &manifest, dir.path(), &all, &want).await;
    check_sampling(&h, &manifest, dir.path(), &all, &start).await;
    check_evidence(&h, &manifest, dir.path(), &all).await;
    check_feed(&h, &manifest, dir.path()).await;

    // A review action refreshes the facility's summary: dismissing an open event takes it off
    // the item's open count at once.
    let open = all
        .iter()
        .find(|i| i["counts"]["openEvents"].as_i64().unwrap() > 0)
        .expect("an open event");
    let facility = id(open);
    let event = h
        .scalar_i64(&format!(
            "select min(id) from violation_event where facility_id = {facility}
               and retracted_at is null and status = 'open'"
        ))
        .await;
    h.review(event, "dismissed").await;
    let now = walk(&h, "/api/facilities?limit=1000&sort=id").await;
    let item = now.iter().find(|i| id(i) == facility).unwrap();
    assert_eq!(
        item["counts"]["openEvents"].as_i64().unwrap(),
        open["counts"]["openEvents"].as_i64().unwrap() - 1
    );
    assert_eq!(item["counts"]["events"], open["counts"]["events"]);

    // Rebuilds at once (a publish's full one, a review's single one) never collide, and a
    // full rebuild writes what the incremental ones left.
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let pool = h.pool().clone();
            tokio::spawn(async move {
                let one = [facility];
                stormwater::repo::summary::refresh(&pool, (i % 2 == 1).then_some(&one[..])).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("concurrent rebuilds");
    }
    let strip = |items: Vec<Value>| {
        items
            .into_iter()
            .map(|mut i| {
                i.as_object_mut().unwrap().remove("summaryComputedAt");
                i
            })
            .collect::<Vec<_>>()
    };
    let rebuilt = strip(walk(&h, "/api/facilities?limit=999&sort=id").await);
    assert_eq!(rebuilt, strip(now));

    // Sorts: each walks every item once, in its order.
    for (sort, path) in [
        ("-openEvents", "/counts/openEvents"),
        ("-enforcementActions", "/counts/enforcementActions"),
        ("-penaltiesAssessed", "/penalties/assessed"),
        ("lastInspectionDate", "/dates/lastInspection"),
        ("-lastActivityDate", "/dates/lastActivity"),
        ("id", "/id"),
    ] {
        let walked = walk(&h, &format!("/api/facilities?limit=17&sort={sort}")).await;
        assert_eq!(ids(&walked), ids(&all), "{sort}");
        assert_eq!(walked.len(), all.len(), "{sort}");
        assert_ordered(&walked, path, sort.starts_with('-'), sort);
    }
}

/// One published violation row, as the feed should show it.
#[derive(Debug, Clone)]
struct FileViolation {
    violation_id: String,
    key: Option<(String, String)>,
    kind: String,
    status: String,
    serious: Option<bool>,
    county: String,
    date: Option<String>,
    violation_type: String,
    priority: String,
    description: String,
}

/// `GET /api/violations`: regulatory items are the published rows (every one, with its fields,
/// program, facility, county, status, date and links), the filters pick what the files say,
/// the totals and stats add up over both kinds.
async fn check_violation_feed(
    h: &Harness,
    manifest: &Manifest,
    dir: &std::path::Path,
    files: &Files,
    directory: &[Value],
) {
    let rows: Vec<FileViolation> = column_values(
        &manifest.path(dir, "smarts_violations"),
        &[
            "VIOLATION_ID",
            "APP_ID",
            "WDID",
            "PERMIT_TYPE",
            "VIOLATION_STATUS",
            "SERIOUS_VIOLATION",
            "PLACE_COUNTY",
            "OCCURRENCE_DATE",
            "DISCOVERY_DATE",
            "VIOLATION_TYPE",
            "VIOLATION_PRIORITY",
            "DESCRIPTION",
        ],
    )
    .into_iter()
    .map(|r| {
        let key = key(&r[1], &r[2]);
        // The program of the record the key belongs to (industrial first, as links are read),
        // else the published permit type.
        let kind = match &key {
            Some(k) if files.industrial.contains(k) => "smarts_industrial",
            Some(k) if files.construction.contains(k) => "smarts_construction",
            _ if r[3].to_lowercase().contains("construction") => "smarts_construction",
            _ => "smarts_industrial",
        };
        FileViolation {
            violation_id: r[0].clone(),
            key,
            kind: kind.to_owned(),
            status: r[4].to_lowercase(),
            serious: match r[5].to_uppercase().as_str() {
                "Y" | "YES" | "TRUE" | "T" => Some(true),
                "N" | "NO" | "FALSE" | "F" => Some(false),
                _ => None,
            },
            county: r[6].clone(),
            date: day(&r[7]).or_else(|| day(&r[8])),
            violation_type: r[9].clone(),
            priority: r[10].clone(),
            description: r[11].clone(),
        }
    })
    .collect();
    assert!(rows.len() > 20, "{} violation rows", rows.len());
    let by_id: HashMap<&str, &FileViolation> =
        rows.iter().map(|r| (r.violation_id.as_str(), r)).collect();
    assert_eq!(
        by_id.len(),
        rows.len(),
        "violation ids are unique in the file"
    );
    let owner: HashMap<(String, String), i64> = directory
        .iter()
        .flat_map(|i| item_keys(i).into_iter().map(move |k| (k, id(i))))
        .collect();

    // Every published row is one regulatory item, with the file's fields.
    let regulatory = walk(h, "/api/violations?kind=regulatory&limit=1000").await;
    assert_eq!(regulatory.len(), rows.len());
    let mut seen = HashSet::new();
    for item in &regulatory {
        assert_eq!(item["kind"], "regulatory");
        let vid = item["violationId"].as_str().unwrap();
        assert!(seen.insert(vid.to_owned()), "{vid} twice");
        let row = by_id[vid];
        assert_eq!(item["source"], row.kind.as_str(), "{item}");
        assert_eq!(
            item["facilityId"].as_i64(),
            row.key.as_ref().and_then(|k| owner.get(k)).copied(),
            "{item}"
        );
        assert_eq!(item["status"].as_str().unwrap().to_lowercase(), row.status);
        assert_eq!(item["seriousViolation"].as_bool(), row.serious, "{item}");
        assert_eq!(item["lastDate"].as_str().map(str::to_owned), row.date);
        for (field, want) in [
            ("type", &row.violation_type),
            ("priority", &row.priority),
            ("description", &row.description),
            ("county", &row.county),
        ] {
            let want = present(want).then_some(want.as_str());
            assert_eq!(item[field].as_str(), want, "{field} of {item}");
        }
        assert_eq!(
            item["links"]["record"].as_str().unwrap(),
            format!("/api/smarts/violations?violationId={vid}")
        );
    }

    // The links lead to the records they name.
    let inspections: HashMap<String, (String, String)> = column_values(
        &manifest.path(dir, "smarts_inspections"),
        &["INSPECTION_ID", "APP_ID", "WDID"],
    )
    .into_iter()
    .filter_map(|r| Some((r[0].clone(), key(&r[1], &r[2])?)))
    .collect();
    let mut followed = 0;
    for item in regulatory.iter().filter(|i| {
        !i["links"]["inspections"].as_array().unwrap().is_empty()
            || !i["links"]["enforcement"].as_array().unwrap().is_empty()
    }) {
        let vid = item["violationId"].as_str().unwrap();
        for link in item["links"]["inspections"].as_array().unwrap() {
            let found = get(h, link.as_str().unwrap()).await;
            let inspection = &found["data"][0];
            let iid = inspection["inspectionId"].as_str().unwrap();
            assert_eq!(found["data"].as_array().unwrap().len(), 1, "{link}");
            assert_eq!(Some(&inspections[iid]), by_id[vid].key.as_ref(), "{link}");
            assert!(
                inspection["violations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["violationId"] == vid),
                "{link} lists {vid}"
            );
            followed += 1;
        }
        for link in item["links"]["enforcement"].as_array().unwrap() {
            let found = get(h, link.as_str().unwrap()).await;
            assert!(
                found["data"][0]["violations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["violationId"] == vid),
                "{link} lists {vid}"
            );
            followed += 1;
        }
        let record = get(h, item["links"]["record"].as_str().unwrap()).await;
        assert_eq!(record["data"][0]["violationId"], vid);
    }
    assert!(
        followed > 0,
        "the generated files link violations to inspections"
    );
    println!(
        "violations feed: {} regulatory rows, {followed} links followed",
        rows.len()
    );

    // Filters on the regulatory kind: the rows the file predicts.
    let check = async |query: &str, keep: &dyn Fn(&FileViolation) -> bool| {
        let got = walk(
            h,
            &format!("/api/violations?kind=regulatory&limit=1000&{query}"),
        )
        .await;
        let got: HashSet<String> = got
            .iter()
            .map(|i| i["violationId"].as_str().unwrap().to_owned())
            .collect();
        let want: HashSet<String> = rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.violation_id.clone())
            .collect();
        assert_eq!(got, want, "{query}");
        want.len()
    };
    for source in ["smarts_industrial", "smarts_construction"] {
        check(&format!("source={source}"), &|r| r.kind == source).await;
    }
    assert_eq!(check("source=esmr", &|_| false).await, 0);
    assert!(check("serious=true", &|r| r.serious == Some(true)).await > 0);
    check("serious=false", &|r| r.serious == Some(false)).await;
    for status in ["violation", "potential", "dismissed"] {
        check(&format!("status={status}"), &|r| r.status == status).await;
    }
    assert!(
        check("includeResolved=false", &|r| r.status != "dismissed").await < rows.len(),
        "some generated violations are dismissed"
    );
    let county = rows
        .iter()
        .find(|r| present(&r.county))
        .unwrap()
        .county
        .clone();
    check(
        &format!("county={}", county.to_lowercase().replace(' ', "%20")),
        &|r| r.county.eq_ignore_ascii_case(&county),
    )
    .await;
    check("dateFrom=2020-07-01&dateTo=2022-06-30", &|r| {
        r.date
            .as_deref()
            .is_some_and(|d| ("2020-07-01"..="2022-06-30").contains(&d))
    })
    .await;
    check("year=2021", &|r| {
        r.date
            .as_deref()
            .is_some_and(|d| ("2021-07-01"..="2022-06-30").contains(&d))
    })
    .await;
    let busiest = directory
        .iter()
        .max_by_key(|i| i["counts"]["smartsViolations"].as_i64().unwrap())
        .unwrap();
    let keys: HashSet<_> = item_keys(busiest).into_iter().collect();
    let n = check(&format!("facilityId={}", id(busiest)), &|r| {
        r.key.as_ref().is_some_and(|k| keys.contains(k))
    })
    .await;
    assert_eq!(
        busiest["counts"]["smartsViolations"].as_i64().unwrap() as usize,
        n
    );
    // What regulatory items lack leaves them out.
    assert_eq!(check("severity=high", &|_| false).await, 0);

    // Where each violating sample was taken, and the monitoring-location filter.
    check_sample_locations(h, manifest, dir, directory).await;

    // Both kinds: each total is the sum of the kinds', and the stats say the same.
    let total = async |query: &str| {
        get(h, &format!("/api/violations?limit=1&{query}")).await["page"]["total"]
            .as_i64()
            .unwrap()
    };
    let computed = walk(h, "/api/violations?kind=computed&limit=1000").await;
    assert!(computed.iter().all(|i| i["kind"] == "computed"));
    assert!(!computed.is_empty());
    assert_eq!(total("kind=computed").await, computed.len() as i64);
    assert_eq!(total("kind=regulatory").await, rows.len() as i64);
    let both = walk(h, "/api/violations?limit=1000").await;
    println!(
        "violations feed: {} computed events, {} items of both kinds",
        computed.len(),
        both.len()
    );
    assert_eq!(both.len(), computed.len() + rows.len());
    assert_eq!(total("").await, both.len() as i64);
    // One facet of computed events, statewide or in a county, is counted from the stored stats
    // of its scope: the walked events say the same.
    // (An eSMR facility may have no county: the first event that has one.)
    let first = computed
        .iter()
        .find(|i| i["county"].is_string())
        .expect("a computed event in a county");
    let county = first["county"].as_str().unwrap();
    for (param, field) in [
        ("severity", "severity"),
        ("pollutant", "pollutant"),
        ("type", "benchmarkType"),
    ] {
        let value = first[field].as_str().unwrap();
        let of = |i: &&Value| i[field] == value;
        let want = computed.iter().filter(of).count() as i64;
        assert_eq!(total(&format!("{param}={value}")).await, want, "{param}");
        assert_eq!(
            total(&format!("{param}={value}&kind=computed")).await,
            want,
            "{param}"
        );
        assert_eq!(
            total(&format!(
                "{param}={value}&county={}",
                county.replace(' ', "%20")
            ))
            .await,
            computed
                .iter()
                .filter(of)
                .filter(|i| i["county"] == county)
                .count() as i64,
            "{param} in {county}"
        );
    }
    let stats = get(h, "/api/violations/stats").await["data"].clone();
    assert_eq!(stats["total"], both.len() as i64);
    assert_eq!(stats["byKind"]["computed"], computed.len() as i64);
    assert_eq!(stats["byKind"]["regulatory"], rows.len() as i64);
    let mut types: HashMap<String, i64> = HashMap::new();
    for r in &rows {
        let t = if present(&r.violation_type) {
            r.violation_type.clone()
        } else {
            "unknown".into()
        };
        *types.entry(t).or_default() += 1;
    }
    assert_eq!(
        as_counts(&stats["byViolationType"]),
        types,
        "regulatory types"
    );
    for source in ["smarts_industrial", "smarts_construction", "esmr"] {
        let computed_here = computed.iter().filter(|i| i["source"] == source).count();
        let regulatory_here = rows.iter().filter(|r| r.kind == source).count();
        assert_eq!(
            total(&format!("source={source}")).await,
            (computed_here + regulatory_here) as i64,
            "{source}"
        );
        assert_eq!(
            stats["bySource"][source].as_i64().unwrap_or(0),
            total(&format!("source={source}")).await
        );
        let live = get(
            h,
            &format!("/api/violations/stats?source={source}&kind=regulatory"),
        )
        .await;
        assert_eq!(live["data"]["total"], regulatory_here as i64, "{source}");
    }
    let smarts_stats = get(h, "/api/violations/stats?source=smarts").await["data"].clone();
    assert_eq!(
        smarts_stats["total"],
        both.iter().filter(|i| i["source"] != "esmr").count() as i64
    );
    // includeResolved=false leaves out the reviewed items of both kinds.
    let reviewed = both
        .iter()
        .filter(|i| {
            let s = i["status"].as_str().unwrap_or("").to_lowercase();
            s == "resolved" || s == "dismissed"
        })
        .count();
    assert_eq!(
        total("includeResolved=false").await,
        (both.len() - reviewed) as i64
    );
}

/// Each sample of a facility's events says where it was taken (a location the files record
/// for the facility's keys on that day), and `monitoringLocation` picks the events with an
/// exceeding sample there.
async fn check_sample_locations(
    h: &Harness,
    manifest: &Manifest,
    dir: &std::path::Path,
    directory: &[Value],
) {
    let rows = column_values(
        &manifest.path(dir, "smarts_industrial_monitoring"),
        &["APP_ID", "WDID", "SAMPLE_DATE", "MONITORING_LOCATION_NAME"],
    );
    let facility = directory
        .iter()
        .filter(|i| i["sources"]["smartsIndustrial"] == true)
        .max_by_key(|i| (i["counts"]["events"].as_i64(), id(i)))
        .unwrap();
    let keys: HashSet<_> = item_keys(facility).into_iter().collect();
    let named: HashSet<(String, String)> = rows
        .iter()
        .filter(|r| key(&r[0], &r[1]).is_some_and(|k| keys.contains(&k)))
        .filter_map(|r| Some((day(&r[2])?, r[3].to_lowercase())))
        .collect();
    let events = walk(
        h,
        &format!(
            "/api/violations?kind=computed&limit=1000&facilityId={}",
            id(facility)
        ),
    )
    .await;
    assert!(!events.is_empty());
    let mut at: HashMap<String, HashSet<i64>> = HashMap::new();
    for e in events.iter().filter(|e| e["source"] == "smarts_industrial") {
        let detail = get(h, &format!("/api/violations/{}", e["id"])).await;
        for sample in detail["data"]["samples"].as_array().unwrap() {
            let name = sample["location"]["name"]
                .as_str()
                .unwrap_or("")
                .to_lowercase();
            let date = sample["date"].as_str().unwrap().to_owned();
            assert!(named.contains(&(date, name.clone())), "{sample}");
            if sample["exceeds"] == true {
                at.entry(name)
                    .or_default()
                    .insert(e["id"].as_i64().unwrap());
            }
        }
    }
    let (location, expected) = at
        .iter()
        .max_by_key(|(l, e)| (e.len(), (*l).clone()))
        .expect("an exceeding sample with a location");
    let got = walk(
        h,
        &format!(
            "/api/violations?limit=1000&facilityId={}&monitoringLocation={}",
            id(facility),
            location.to_uppercase().replace(' ', "%20")
        ),
    )
    .await;
    assert_eq!(
        got.iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect::<HashSet<_>>(),
        *expected,
        "{location}"
    );
}

/// Half-years of one facility judged by the IGP's sampling frequency, from the files:
/// `(first day, sampled QSE days)` of every half-year wholly inside its coverage that has ended.
fn sampling_halves(
    item: &Value,
    records: &HashMap<(String, String), Vec<String>>,
    qse: &HashMap<(String, String), HashSet<chrono::NaiveDate>>,
    today: chrono::NaiveDate,
) -> Vec<(chrono::NaiveDate, usize)> {
    use chrono::{Datelike, Months, NaiveDate};
    let date = |raw: &str| file_date(raw);
    let igp: Vec<(&(String, String), &Vec<String>)> = item["records"]["smartsIndustrial"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let k = key(r["appId"].as_str().unwrap_or(""), r["wdid"].as_str()?)?;
            records.get_key_value(&k)
        })
        // Covered: Active, or Terminated / Expired with a termination date.
        .filter(|(_, r)| {
            r[0].trim().eq_ignore_ascii_case("industrial")
                && (r[3].eq_ignore_ascii_case("active")
                    || (["terminated", "expired"].contains(&r[3].to_lowercase().as_str())
                        && date(&r[2]).is_some()))
        })
        .collect();
    if igp.is_empty() {
        return vec![];
    }
    let days: HashSet<NaiveDate> = igp
        .iter()
        .flat_map(|(k, _)| qse.get(*k).into_iter().flatten().copied())
        .collect();
    let noi = igp.iter().filter_map(|(_, r)| date(&r[1])).min();
    let Some(first) = noi.or_else(|| days.iter().min().copied()) else {
        return vec![];
    };
    let start = first.max(NaiveDate::from_ymd_opt(2015, 7, 1).unwrap());
    let stop = igp
        .iter()
        .map(|(_, r)| {
            if r[3].eq_ignore_ascii_case("active") {
                today
            } else {
                date(&r[2]).unwrap()
            }
        })
        .max()
        .unwrap()
        .min(today);
    let mut out = vec![];
    let mut h = NaiveDate::from_ymd_opt(start.year(), 1, 1).unwrap();
    while h <= stop {
        let next = h + Months::new(6);
        let end = next.pred_opt().unwrap();
        if h >= start && end <= stop && next <= today {
            out.push((h, days.iter().filter(|d| (h..=end).contains(*d)).count()));
        }
        h = next;
    }
    out
}

/// A date as the files write it: ISO (the portal) or MM/DD/YYYY (the raw SMARTS downloads).
fn file_date(raw: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(raw, "%m/%d/%Y"))
        .ok()
}

/// The columns `columns` of every record of the tab-separated file `path`.
fn tsv_values(path: &std::path::Path, columns: &[&str]) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .flexible(true)
        .from_path(path)
        .unwrap();
    let header = r.headers().unwrap().clone();
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| header.iter().position(|h| h == *c).unwrap())
        .collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            idx.iter()
                .map(|&i| rec.get(i).unwrap_or("").to_owned())
                .collect()
        })
        .collect()
}

/// The industrial records (`[PERMIT_TYPE, NOI, NOT, STATUS]` by key) and the QSE sample days
/// by key of a facility file and a monitoring file (read by `read`).
type SamplingFiles = (
    HashMap<(String, String), Vec<String>>,
    HashMap<(String, String), HashSet<chrono::NaiveDate>>,
);

/// Reads the columns of a file: `column_values` (CSV) or `tsv_values`.
type ReadColumns = dyn Fn(&std::path::Path, &[&str]) -> Vec<Vec<String>>;

fn sampling_files(
    read: &ReadColumns,
    facilities: &std::path::Path,
    monitoring: &std::path::Path,
) -> SamplingFiles {
    let records = read(
        facilities,
        &[
            "APP_ID",
            "WDID",
            "PERMIT_TYPE",
            "NOI_PROCESSED_DATE",
            "NOT_EFFECTIVE_DATE",
            "STATUS",
        ],
    )
    .into_iter()
    .filter_map(|r| Some((key(&r[0], &r[1])?, r[2..].to_vec())))
    .collect();
    let mut qse: HashMap<(String, String), HashSet<chrono::NaiveDate>> = HashMap::new();
    for r in read(monitoring, &["APP_ID", "WDID", "EVENT_TYPE", "SAMPLE_DATE"]) {
        if let (Some(k), Some(d)) = (key(&r[0], &r[1]), file_date(&r[3]))
            && r[2].trim().eq_ignore_ascii_case("qualifying storm event")
        {
            qse.entry(k).or_default().insert(d);
        }
    }
    (records, qse)
}

/// An item's `sampling` (judged and short half-years) is what the files say; its half-years.
fn check_item_sampling(
    item: &Value,
    records: &HashMap<(String, String), Vec<String>>,
    qse: &HashMap<(String, String), HashSet<chrono::NaiveDate>>,
    today: chrono::NaiveDate,
) -> Vec<(chrono::NaiveDate, usize)> {
    let halves = sampling_halves(item, records, qse, today);
    let short: Vec<String> = halves
        .iter()
        .filter(|(_, n)| *n < 2)
        .map(|(d, _)| d.to_string())
        .collect();
    assert_eq!(
        item["sampling"]["judgedHalfYears"],
        halves.len() as i64,
        "{item}"
    );
    assert_eq!(item["sampling"]["shortHalfYears"], json!(short), "{item}");
    halves
}

/// The real Region 1 download (facilities and monitoring, raw SMARTS TSV): every directory
/// item's judged and short half-years are what the two files say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_region1_sampling_matches_the_files() {
    let dir = "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_";
    let facilities = support::shared_data(&format!("{dir}Application_Specific_Data.txt"));
    let monitoring = support::shared_data(&format!("{dir}Ad_Hoc_Reports_-_Parameter_Data.txt"));
    let h = harness("sampling-region1", None).await;
    let source = |dataset: &str, path: &std::path::Path| stormwater::sync::manifest::Source {
        dataset: dataset.into(),
        url: support::file_url(path),
        scope: None,
    };
    h.sync(vec![
        source("smarts_industrial_facilities", &facilities),
        source("smarts_industrial_monitoring", &monitoring),
    ])
    .await;
    let (records, qse) = sampling_files(&tsv_values, &facilities, &monitoring);
    assert!(!qse.is_empty());
    let today = chrono::Utc::now().date_naive();
    let all = walk(&h, "/api/facilities?limit=1000").await;
    let (mut judged, mut sampled) = (0, 0);
    for item in &all {
        let halves = check_item_sampling(item, &records, &qse, today);
        judged += halves.len();
        sampled += halves.iter().filter(|(_, n)| *n > 0).count();
    }
    assert!(
        judged > 100 && sampled > 0,
        "{judged} judged, {sampled} sampled"
    );
}

/// Monitoring completeness: every directory item's judged and short half-years, the filter in
/// the triage window, and one facility's half-years on `/complete`, against the files.
async fn check_sampling(
    h: &Harness,
    manifest: &Manifest,
    dir: &std::path::Path,
    directory: &[Value],
    window_start: &str,
) {
    let today = chrono::Utc::now().date_naive();
    let (records, qse) = sampling_files(
        &column_values,
        &manifest.path(dir, "smarts_industrial_facilities"),
        &manifest.path(dir, "smarts_industrial_monitoring"),
    );
    let mut judged_total = 0;
    let mut short_somewhere = HashSet::new();
    for item in directory {
        let halves = check_item_sampling(item, &records, &qse, today);
        judged_total += halves.len();
        let start = chrono::NaiveDate::parse_from_str(window_start, "%Y-%m-%d").unwrap();
        if halves.iter().any(|(d, n)| *n < 2 && *d >= start) {
            short_somewhere.insert(id(item));
        }
    }
    assert!(judged_total > 0);
    assert!(!short_somewhere.is_empty());
    let flagged = walk(h, "/api/facilities?limit=1000&fewerThanRequired=true").await;
    assert_eq!(ids(&flagged), short_somewhere);
    let unflagged = walk(h, "/api/facilities?limit=1000&fewerThanRequired=false").await;
    assert_eq!(flagged.len() + unflagged.len(), directory.len());

    // One facility's half-years, each with its sampled days.
    let item = directory
        .iter()
        .filter(|i| {
            let halves = sampling_halves(i, &records, &qse, today);
            halves.iter().any(|(_, n)| *n >= 2) && halves.iter().any(|(_, n)| *n < 2)
        })
        .max_by_key(|i| id(i))
        .expect("a facility with complete and short half-years");
    let halves = sampling_halves(item, &records, &qse, today);
    let body = get(h, &format!("/api/facilities/{}/complete", id(item))).await;
    assert_eq!(body["meta"]["sampling"]["required"], 2);
    let served: Vec<(String, i64, bool)> = body["data"]["sampling"]["halfYears"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            assert_eq!(
                x["eventDates"].as_array().unwrap().len() as i64,
                x["sampledEvents"].as_i64().unwrap()
            );
            (
                x["from"].as_str().unwrap().to_owned(),
                x["sampledEvents"].as_i64().unwrap(),
                x["fewerThanRequired"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, i64, bool)> = halves
        .iter()
        .map(|(d, n)| (d.to_string(), *n as i64, *n < 2))
        .collect();
    assert_eq!(served, expected);
}

/// The file a ZIP member holds, as CSV records keyed by column name.
fn zip_csv(
    zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>,
    name: &str,
) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(zip.by_name(name).unwrap_or_else(|_| panic!("{name}")));
    let header = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// The evidence ZIP of the facility with the most events: its manifest lists every file with
/// its rows and SHA-256; the events are the facility's with a sample in the window; every
/// figure is redone from the listed rows (annual averages under two non-detect conventions,
/// ratios, counts); every sample row is the record on the line of the file it names; the
/// SMARTS record and the half-years are what the files say.
async fn check_evidence(
    h: &Harness,
    manifest: &Manifest,
    dir: &std::path::Path,
    directory: &[Value],
) {
    let item = directory
        .iter()
        .filter(|i| i["sources"]["smartsIndustrial"] == true)
        .max_by_key(|i| (i["counts"]["events"].as_i64(), id(i)))
        .unwrap();
    let facility = id(item);
    let start = "2016-07-01";
    let (status, _, _) = h
        .get(
            "api-facility-evidence",
            &format!("/api/facilities/{facility}/evidence?windowStart=2999-01-01"),
        )
        .await;
    assert_eq!(status, 400);
    let resp = h
        .raw(
            "api-facility-evidence",
            &format!("/api/facilities/{facility}/evidence?windowStart={start}"),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let lambda_http::Body::Binary(bytes) = resp.body() else {
        panic!("a binary body");
    };
    assert!(bytes.len() <= stormwater::api::evidence::MAX_ZIP_BYTES);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let m: Value = serde_json::from_reader(zip.by_name("manifest.json").unwrap()).unwrap();
    assert_eq!(m["facility"]["id"], facility);
    assert_eq!(m["window"]["from"], start);
    for f in m["files"].as_array().unwrap() {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut zip.by_name(f["name"].as_str().unwrap()).unwrap(),
            &mut bytes,
        )
        .unwrap();
        use sha2::Digest;
        assert_eq!(
            f["sha256"],
            hex::encode(sha2::Sha256::digest(&bytes)),
            "{f}"
        );
        if f["name"].as_str().unwrap().ends_with(".csv") {
            let rows = csv::Reader::from_reader(&bytes[..]).records().count();
            assert_eq!(f["rows"], rows as i64, "{f}");
        }
    }

    // The events: the facility's with a sample in the window.
    let events = zip_csv(&mut zip, "exceedances.csv");
    let listed = walk(
        h,
        &format!("/api/violations?kind=computed&limit=1000&facilityId={facility}&dateFrom={start}"),
    )
    .await;
    assert_eq!(
        events
            .iter()
            .map(|e| e["id"].clone())
            .collect::<HashSet<_>>(),
        listed
            .iter()
            .map(|e| e["id"].to_string())
            .collect::<HashSet<_>>()
    );
    assert!(!events.is_empty());

    // Every figure from the listed rows.
    let samples = zip_csv(&mut zip, "samples.csv");
    let annual = zip_csv(&mut zip, "nal_annual.csv");
    let num = |s: &str| {
        s.parse::<f64>()
            .unwrap_or_else(|_| panic!("a number: {s:?}"))
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    let mut annual_checked = 0;
    for e in &events {
        let rows: Vec<_> = samples.iter().filter(|s| s["eventId"] == e["id"]).collect();
        assert!(!rows.is_empty(), "{e:?}");
        for r in &rows {
            if !r["ratio"].is_empty() {
                assert!(
                    close(
                        num(&r["ratio"]),
                        num(&r["value"]) / num(&r["benchmarkValue"])
                    ),
                    "{r:?}"
                );
            }
        }
        if e["benchmarkType"] == "NAL_ANNUAL" {
            let a = annual
                .iter()
                .find(|a| {
                    a["pollutant"] == e["pollutant"] && a["reportingYear"] == e["reportingYear"]
                })
                .expect("the event's annual statistics");
            assert_eq!(num(&a["sampleCount"]) as usize, rows.len(), "{e:?}");
            assert_eq!(num(&e["sampleCount"]) as usize, rows.len());
            let nd = |r: &HashMap<String, String>| r["nonDetect"] == "true";
            assert_eq!(
                num(&a["ndCount"]) as usize,
                rows.iter().filter(|r| nd(r)).count()
            );
            let zero: f64 = rows
                .iter()
                .map(|r| if nd(r) { 0.0 } else { num(&r["value"]) })
                .sum::<f64>()
                / rows.len() as f64;
            assert!(close(zero, num(&a["averageNdZero"])), "{e:?} {zero}");
            let detected: Vec<f64> = rows
                .iter()
                .filter(|r| !nd(r))
                .map(|r| num(&r["value"]))
                .collect();
            if !detected.is_empty() {
                let dropped = detected.iter().sum::<f64>() / detected.len() as f64;
                assert!(close(dropped, num(&a["averageNdDropped"])), "{e:?}");
            }
            assert!(close(num(&e["value"]), num(&a["average"])), "{e:?}");
            assert!(
                close(num(&e["maxRatio"]), num(&e["value"]) / num(&a["nal"])),
                "{e:?}"
            );
            assert!(num(&a["average"]) > num(&a["nal"]));
            annual_checked += 1;
        } else {
            assert_eq!(num(&e["exceedanceCount"]) as usize, rows.len(), "{e:?}");
            let max = rows
                .iter()
                .map(|r| num(&r["ratio"]))
                .fold(f64::MIN, f64::max);
            assert!(close(max, num(&e["maxRatio"])), "{e:?}");
            assert!(rows.iter().all(|r| r["exceeds"] == "true"));
        }
    }
    assert!(annual_checked > 0, "an annual NAL event in the evidence");

    // Every sample row is the record on the line of the file it names.
    let mut by_file: HashMap<String, HashMap<u64, csv::StringRecord>> = HashMap::new();
    let mut headers: HashMap<String, csv::StringRecord> = HashMap::new();
    for s in &samples {
        let path = s["file"]
            .strip_prefix("file://")
            .expect("a file the sync read")
            .to_owned();
        if !by_file.contains_key(&path) {
            let mut r = csv::Reader::from_path(&path).unwrap();
            headers.insert(path.clone(), r.headers().unwrap().clone());
            let mut lines = HashMap::new();
            let mut rec = csv::StringRecord::new();
            while r.read_record(&mut rec).unwrap() {
                lines.insert(rec.position().unwrap().line(), rec.clone());
            }
            by_file.insert(path.clone(), lines);
        }
        let header = &headers[&path];
        let line: u64 = s["line"].parse().unwrap();
        let record = &by_file[&path][&line];
        let field = |name: &str| {
            record
                .get(header.iter().position(|h| h == name).unwrap())
                .unwrap()
        };
        let (date, parameter, result) = match s["dataset"].as_str() {
            "esmr" => ("sampling_date", "parameter", "result"),
            _ => ("SAMPLE_DATE", "PARAMETER", "RESULT"),
        };
        assert_eq!(field(date), s["date"], "{s:?}");
        assert_eq!(field(parameter), s["parameter"], "{s:?}");
        // A non-detect may publish no result.
        if s["rawValue"].is_empty() {
            assert!(!present(field(result)), "{s:?} vs {record:?}");
        } else {
            assert!(
                close(num(field(result)), num(&s["rawValue"])),
                "{s:?} vs {record:?}"
            );
        }
        assert_eq!(
            manifest.path(dir, &s["dataset"]).to_str(),
            Some(path.as_str()),
            "{s:?}"
        );
    }

    // The SMARTS record, the benchmarks and the half-years.
    let keys: HashSet<_> = item_keys(item).into_iter().collect();
    for (member, dataset) in [
        ("enforcement.csv", "smarts_enforcement_actions"),
        ("inspections.csv", "smarts_inspections"),
        ("violations.csv", "smarts_violations"),
    ] {
        let rows = zip_csv(&mut zip, member);
        let expected = column_values(&manifest.path(dir, dataset), &["APP_ID", "WDID"])
            .iter()
            .filter(|r| key(&r[0], &r[1]).is_some_and(|k| keys.contains(&k)))
            .count();
        assert_eq!(rows.len(), expected, "{member}");
    }
    let benchmarks = zip_csv(&mut zip, "benchmarks.csv");
    for s in &samples {
        let b = benchmarks
            .iter()
            .find(|b| b["id"] == s["benchmarkId"])
            .expect("its benchmark");
        assert!(!b["source"].is_empty(), "{b:?}");
    }
    let sampling = zip_csv(&mut zip, "sampling.csv");
    assert_eq!(
        sampling.len() as i64,
        item["sampling"]["judgedHalfYears"].as_i64().unwrap()
    );
}

/// Runs the RFC 4287 validator (tests/fixtures/atom: the RFC's RELAX NG grammar with lxml, its
/// Schematron rules, atoma) on `xml`; the reasons when it is invalid.
fn atom_errors(xml: &str) -> Option<String> {
    use std::io::Write;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/fixtures/atom/validate_atom.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the project venv's python (./dev installs lxml, rnc2rng, atoma)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (!out.status.success()).then_some(text)
}

/// One Atom document as (entry id, title, updated, alternate href) per entry.
fn atom_entries(xml: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for chunk in xml.split("<entry>").skip(1) {
        let tag = |name: &str| {
            let open = format!("<{name}");
            let start = chunk.find(&open).unwrap();
            let after = &chunk[start..];
            let body = &after[after.find('>').unwrap() + 1..];
            body[..body.find(&format!("</{name}>")).unwrap()].to_owned()
        };
        let href = chunk
            .split("<link ")
            .nth(1)
            .and_then(|l| l.split("href=\"").nth(1))
            .and_then(|l| l.split('"').next())
            .unwrap()
            .to_owned();
        out.push((tag("id"), tag("title"), tag("updated"), href));
    }
    out
}

/// The Atom feed: valid per RFC 4287 statewide, for a county and for a subscription's area;
/// a county's entries are that county's events and the enforcement actions the file places
/// there; every entry links to the document it summarises; newest first.
async fn check_feed(h: &Harness, manifest: &Manifest, dir: &std::path::Path) {
    let fetch = async |path: &str, key: Option<&str>| {
        let resp = h.raw("api-feed", path, key).await;
        let status = resp.status().as_u16();
        let text = match resp.body() {
            lambda_http::Body::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        (status, resp.headers().clone(), text)
    };
    let (status, headers, state) = fetch("/api/feed.atom?limit=200", None).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(
        headers["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    assert_eq!(atom_errors(&state), None);
    let entries = atom_entries(&state);
    assert_eq!(entries.len(), 200);
    assert!(entries.windows(2).all(|w| w[0].2 >= w[1].2), "newest first");
    // The validator discriminates: a feed without its id is refused.
    let broken = state
        .replacen("<id>", "<idx>", 1)
        .replacen("</id>", "</idx>", 1);
    assert!(atom_errors(&broken).is_some());

    // A county: the events of its facilities and the enforcement actions the file places there.
    let enforcement = column_values(
        &manifest.path(dir, "smarts_enforcement_actions"),
        &["ENFORCEMENT_ID", "PLACE_COUNTY"],
    );
    let mut counties: HashMap<String, usize> = HashMap::new();
    for r in &enforcement {
        *counties.entry(r[1].clone()).or_default() += 1;
    }
    // A county whose whole feed fits in one document, with events and enforcement in it.
    let mut ranked: Vec<(String, usize)> =
        counties.into_iter().filter(|(c, _)| present(c)).collect();
    ranked.sort_by_key(|(c, n)| (std::cmp::Reverse(*n), c.clone()));
    let mut chosen = None;
    for (county, n) in ranked {
        let events = walk(
            h,
            &format!(
                "/api/violations?kind=computed&limit=1000&county={}",
                county.replace(' ', "%20")
            ),
        )
        .await;
        if !events.is_empty() && events.len() + n < 200 {
            chosen = Some((county, events));
            break;
        }
    }
    let (county, events) = chosen.expect("a county with events and enforcement");
    let county = county.as_str();
    let path = format!(
        "/api/feed.atom?limit=200&county={}",
        county.replace(' ', "%20")
    );
    let (status, _, xml) = fetch(&path, None).await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(atom_errors(&xml), None);
    let entries = atom_entries(&xml);
    let want_enforcement: HashSet<String> = enforcement
        .iter()
        .filter(|r| r[1].eq_ignore_ascii_case(county))
        .map(|r| r[0].clone())
        .collect();
    let got_enforcement: HashSet<String> = entries
        .iter()
        .filter_map(|e| e.3.split("enforcementId=").nth(1).map(str::to_owned))
        .collect();
    let got_events: HashSet<String> = entries
        .iter()
        .filter(|e| e.0.contains("violation-event/") && !e.0.contains("/escalated/"))
        .map(|e| e.3.rsplit('/').next().unwrap().to_owned())
        .collect();
    assert!(!want_enforcement.is_empty());
    assert_eq!(got_enforcement, want_enforcement, "{county}");
    assert_eq!(
        got_events,
        events
            .iter()
            .map(|e| e["id"].to_string())
            .collect::<HashSet<_>>(),
        "{county}"
    );
    // Each entry's link answers with what the entry says.
    for (id, title, _, href) in entries.iter().take(25) {
        let path = href.strip_prefix("http://127.0.0.1:9000").expect(href);
        let (function, _) = route_of(path);
        let (status, body, _) = h.get(function.name, path).await;
        assert_eq!(status, 200, "{id}: {body}");
        if id.contains("violation-event/") {
            assert_eq!(
                body["data"]["id"].to_string(),
                path.rsplit('/').next().unwrap()
            );
            assert!(
                title.contains(&xml_escape(
                    body["data"]["facility"]["name"].as_str().unwrap()
                )),
                "{title}"
            );
        } else {
            assert_eq!(body["data"].as_array().unwrap().len(), 1, "{href}");
        }
    }

    // A subscription's area: its owner's credentials; the same county's entries.
    let key = stormwater::auth::create_key(h.pool(), "feed-reader", "test")
        .await
        .unwrap();
    let (status, sub) = h
        .send(
            "api-subscriptions",
            "POST",
            "/api/subscriptions",
            Some(
                json!({ "name": "my county", "mode": "jurisdiction", "counties": [county],
                         "delivery": "email", "email": "reader@example.org" }),
            ),
            Some(&key),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    let sub_path = format!(
        "/api/feed.atom?limit=200&subscription={}",
        sub["data"]["id"]
    );
    let (status, headers, mine) = fetch(&sub_path, Some(&key)).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(headers["cache-control"], "private, no-store");
    assert_eq!(atom_errors(&mine), None);
    let ids = |xml: &str| {
        atom_entries(xml)
            .into_iter()
            .map(|e| e.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&mine), ids(&xml));
    assert_eq!(fetch(&sub_path, None).await.0, 401);
    let other = stormwater::auth::create_key(h.pool(), "someone-else", "test")
        .await
        .unwrap();
    assert_eq!(fetch(&sub_path, Some(&other)).await.0, 404);
    let (status, _, body) = fetch("/api/feed.atom?county=Atlantis", None).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = fetch(&format!("{sub_path}&county=Marin"), Some(&key)).await;
    assert_eq!(status, 400);
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The stored statewide dashboard: facilities by source and linked, with enforcement, active
/// and historical actions, and the top offenders' enforcement, against the files (through the
/// directory's records, whose keys are checked against the files above).
async fn check_dashboard(
    h: &Harness,
    manifest: &Manifest,
    dir: &std::path::Path,
    directory: &[Value],
    want: &HashMap<i64, Expected>,
) {
    let body = get(h, "/api/dashboard").await;
    assert!(body["meta"]["snapshotAt"].is_string(), "stored at publish");
    let d = &body["data"];
    let with = |field: &str| {
        directory
            .iter()
            .filter(|i| i["sources"][field] == true)
            .count() as i64
    };
    let by_source = &d["summary"]["facilitiesBySource"];
    for field in ["smartsIndustrial", "smartsConstruction", "esmr"] {
        assert_eq!(by_source[field], with(field), "{field}");
        assert!(with(field) > 0, "{field}");
    }
    let linked = directory
        .iter()
        .filter(|i| {
            ["smartsIndustrial", "smartsConstruction", "esmr"]
                .iter()
                .filter(|f| i["sources"][**f] == true)
                .count()
                > 1
        })
        .count() as i64;
    assert_eq!(by_source["linked"], linked);
    let enforced = want.values().filter(|e| e.enforcement > 0).count() as i64;
    assert_eq!(d["summary"]["facilitiesWithEnforcement"], enforced);
    assert_eq!(d["enforcement"]["facilities"], enforced);
    let statuses = column_values(
        &manifest.path(dir, "smarts_enforcement_actions"),
        &["ENFORCEMENT_STATUS"],
    );
    let active = statuses
        .iter()
        .filter(|r| r[0].eq_ignore_ascii_case("active"))
        .count() as i64;
    assert!(active > 0);
    assert_eq!(d["enforcement"]["active"], active);
    assert_eq!(
        d["enforcement"]["historical"],
        statuses.len() as i64 - active
    );
    let top = d["topOffenders"].as_array().unwrap();
    assert!(!top.is_empty());
    for t in top {
        let e = &want[&t["facilityId"].as_i64().unwrap()];
        assert_eq!(t["enforcementActions"], e.enforcement, "{t}");
        assert_eq!(t["smartsViolations"], e.violations, "{t}");
        assert_eq!(t["inspections"], e.inspections, "{t}");
    }
    // The live path computes the same.
    let live = get(h, "/api/dashboard?dateFrom=1900-01-01").await;
    assert!(live["meta"]["snapshotAt"].is_null());
    assert_eq!(live["data"]["summary"]["facilitiesBySource"], *by_source);
}

/// `/complete` of the facilities with the most enforcement, the most construction monitoring
/// and eSMR results: permit ids, active and historical enforcement, the last inspection, the
/// construction monitoring summary, site acreage and construction type, eSMR locations with
/// their latest results, against the files.
async fn check_complete(
    h: &Harness,
    manifest: &Manifest,
    dir: &std::path::Path,
    directory: &[Value],
    want: &HashMap<i64, Expected>,
) {
    let mine = |item: &Value| item_keys(item).into_iter().collect::<HashSet<_>>();
    let in_keys = |keys: &HashSet<(String, String)>, r: &[String]| {
        key(&r[0], &r[1]).is_some_and(|k| keys.contains(&k))
    };
    // Enforcement and inspections.
    let enforcement = column_values(
        &manifest.path(dir, "smarts_enforcement_actions"),
        &["APP_ID", "WDID", "ENFORCEMENT_STATUS"],
    );
    let most = directory
        .iter()
        .max_by_key(|i| (i["counts"]["enforcementActions"].as_i64(), id(i)))
        .unwrap();
    let keys = mine(most);
    let c = get(h, &format!("/api/facilities/{}/complete", id(most))).await["data"].clone();
    let rows: Vec<_> = enforcement.iter().filter(|r| in_keys(&keys, r)).collect();
    let active = rows
        .iter()
        .filter(|r| r[2].eq_ignore_ascii_case("active"))
        .count();
    let e = &c["smarts"]["enforcement"];
    assert!(!rows.is_empty());
    assert_eq!(e["active"], active as i64);
    assert_eq!(e["historical"], (rows.len() - active) as i64);
    assert_eq!(
        c["smarts"]["inspections"]["lastInspectionDate"]
            .as_str()
            .map(str::to_owned),
        want[&id(most)].last_inspection
    );
    let wdids: HashSet<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let served: HashSet<&str> = c["permitIds"]["wdids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(served, wdids);

    // Construction: the monitoring summary and each record's site.
    let monitoring = column_values(
        &manifest.path(dir, "smarts_construction_monitoring"),
        &["APP_ID", "WDID", "SAMPLE_DATE", "PARAMETER", "REPORT_ID"],
    );
    let sites: HashMap<(String, String), Vec<String>> = column_values(
        &manifest.path(dir, "smarts_construction_facilities"),
        &[
            "APP_ID",
            "WDID",
            "SITE_TOTAL_SIZE",
            "SITE_TOTAL_DISTURBED_ACREAGE",
            "TYPE_OF_CONSTRUCTION",
        ],
    )
    .into_iter()
    .filter_map(|r| Some((key(&r[0], &r[1])?, r)))
    .collect();
    let rows_of = |item: &Value| {
        let keys = mine(item);
        monitoring
            .iter()
            .filter(|r| in_keys(&keys, r))
            .cloned()
            .collect::<Vec<_>>()
    };
    let builder = directory
        .iter()
        .filter(|i| i["sources"]["smartsConstruction"] == true)
        .max_by_key(|i| (rows_of(i).len(), id(i)))
        .unwrap();
    let rows = rows_of(builder);
    assert!(!rows.is_empty(), "a construction site with monitoring");
    let c = get(h, &format!("/api/facilities/{}/complete", id(builder))).await["data"].clone();
    let m = &c["smarts"]["constructionMonitoring"];
    assert_eq!(m["results"], rows.len() as i64);
    let dates: Vec<String> = rows.iter().filter_map(|r| day(&r[2])).collect();
    assert_eq!(
        m["lastSampleDate"].as_str().map(str::to_owned),
        dates.iter().max().cloned()
    );
    assert_eq!(
        m["firstSampleDate"].as_str().map(str::to_owned),
        dates.iter().min().cloned()
    );
    let reports: HashSet<&str> = rows
        .iter()
        .filter(|r| present(&r[4]))
        .map(|r| r[4].as_str())
        .collect();
    assert_eq!(m["reports"], reports.len() as i64);
    let mut by_parameter: HashMap<String, i64> = HashMap::new();
    for r in &rows {
        let p = if present(&r[3]) {
            r[3].clone()
        } else {
            "unknown".into()
        };
        *by_parameter.entry(p).or_default() += 1;
    }
    let served: HashMap<String, i64> = m["byParameter"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["results"].as_i64().unwrap()))
        .collect();
    assert_eq!(served, by_parameter);
    let number = |raw: &str| raw.parse::<f64>().ok().filter(|v| v.is_finite());
    let mut checked = 0;
    for record in c["smarts"]["records"].as_array().unwrap() {
        if record["kind"] != "construction" {
            continue;
        }
        let k = key(
            record["appId"].as_str().unwrap_or(""),
            record["wdid"].as_str().unwrap(),
        )
        .unwrap();
        let row = &sites[&k];
        let site = &record["site"];
        assert_eq!(site["totalSize"].as_f64(), number(&row[2]), "{record}");
        assert_eq!(
            site["disturbedAcreage"].as_f64(),
            number(&row[3]),
            "{record}"
        );
        assert_eq!(
            site["typeOfConstruction"].as_str(),
            present(&row[4]).then_some(row[4].as_str()),
            "{record}"
        );
        checked += 1;
    }
    assert!(checked > 0);

    // eSMR: every monitoring location of the place, each parameter's latest result.
    let esmr = column_values(
        &manifest.path(dir, "esmr"),
        &[
            "facility_place_id",
            "location_place_id",
            "location_place_type",
            "parameter",
            "sampling_date",
            "result",
        ],
    );
    let place_rows = |item: &Value| {
        let places: HashSet<&str> = item["permitIds"]["esmrPlaceIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        esmr.iter()
            .filter(|r| places.contains(r[0].as_str()))
            .cloned()
            .collect::<Vec<_>>()
    };
    let plant = directory
        .iter()
        .filter(|i| i["sources"]["esmr"] == true)
        .max_by_key(|i| (place_rows(i).len(), id(i)))
        .unwrap();
    let rows = place_rows(plant);
    assert!(!rows.is_empty());
    let c = get(h, &format!("/api/facilities/{}/complete", id(plant))).await["data"].clone();
    let locations = c["esmr"]["locations"].as_array().unwrap();
    let want_locations: HashSet<&str> = rows
        .iter()
        .filter(|r| present(&r[1]))
        .map(|r| r[1].as_str())
        .collect();
    let served: HashSet<&str> = locations
        .iter()
        .map(|l| l["locationPlaceId"].as_str().unwrap())
        .collect();
    assert_eq!(served, want_locations);
    let mut results = 0;
    for l in locations {
        let lid = l["locationPlaceId"].as_str().unwrap();
        let here: Vec<_> = rows.iter().filter(|r| r[1] == lid).collect();
        assert!(
            here.iter()
                .any(|r| l["type"].as_str() == Some(r[2].as_str())),
            "{l}"
        );
        let parameters: HashSet<&str> = here
            .iter()
            .filter(|r| present(&r[3]))
            .map(|r| r[3].as_str())
            .collect();
        let recent = l["recentResults"].as_array().unwrap();
        assert_eq!(
            recent
                .iter()
                .map(|x| x["parameter"].as_str().unwrap())
                .collect::<HashSet<_>>(),
            parameters,
            "{lid}"
        );
        for x in recent {
            let p = x["parameter"].as_str().unwrap();
            let of_p: Vec<_> = here.iter().filter(|r| r[3] == p).collect();
            let last = of_p.iter().filter_map(|r| day(&r[4])).max();
            assert_eq!(x["date"].as_str().map(str::to_owned), last, "{lid} {p}");
            let on_last: Vec<Option<f64>> = of_p
                .iter()
                .filter(|r| day(&r[4]) == last)
                .map(|r| number(&r[5]))
                .collect();
            assert!(
                on_last.iter().any(|v| match (v, x["result"].as_f64()) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                    (None, None) => true,
                    _ => false,
                }),
                "{lid} {p}: {x} not among {on_last:?}"
            );
            results += 1;
        }
    }
    assert!(results > 0);
}

fn as_counts(v: &Value) -> HashMap<String, i64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_i64().unwrap()))
        .collect()
}

/// The reporting year (July–June, named by its first year) of an item's latest exceedance.
fn reporting_year_of(item: &Value) -> Option<i64> {
    use chrono::Datelike;
    let d =
        chrono::NaiveDate::parse_from_str(item["dates"]["lastExceedance"].as_str()?, "%Y-%m-%d")
            .ok()?;
    Some(i64::from(if d.month() >= 7 {
        d.year()
    } else {
        d.year() - 1
    }))
}

/// Values at `pointer` are in order (`descending` or not), nulls last; ids break ties in the
/// same direction.
fn assert_ordered(items: &[Value], pointer: &str, descending: bool, what: &str) {
    use std::cmp::Ordering;
    let cmp = |a: &Value, b: &Value| -> Ordering {
        match (a, b) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Greater,
            (_, Value::Null) => Ordering::Less,
            (Value::Number(x), Value::Number(y)) => {
                let o = x.as_f64().unwrap().total_cmp(&y.as_f64().unwrap());
                if descending { o.reverse() } else { o }
            }
            (Value::String(x), Value::String(y)) => {
                if descending {
                    y.cmp(x)
                } else {
                    x.cmp(y)
                }
            }
            // A list of years sorts by how many there are.
            (Value::Array(x), Value::Array(y)) => {
                let o = x.len().cmp(&y.len());
                if descending { o.reverse() } else { o }
            }
            other => panic!("{what}: cannot order {other:?}"),
        }
    };
    for pair in items.windows(2) {
        let (a, b) = (
            pair[0].pointer(pointer).unwrap_or(&Value::Null),
            pair[1].pointer(pointer).unwrap_or(&Value::Null),
        );
        // Ties go by id in the same direction (numeric ids; a composite id's key is not shown;
        // the feed keys regulatory items after every event, at id + 2^62).
        let tie = |v: &Value| {
            v["id"].as_i64().map(|id| {
                i128::from(id)
                    + if v["kind"] == "regulatory" {
                        1 << 62
                    } else {
                        0
                    }
            })
        };
        let o = cmp(a, b).then_with(|| match (tie(&pair[0]), tie(&pair[1])) {
            (Some(x), Some(y)) if descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        });
        assert_ne!(o, Ordering::Greater, "{what}: {a} then {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_walks_each_record_once_under_every_sort() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = support::generate(dir.path(), 29, "0.004");
    let h = harness("sorts", Some(5_000)).await;
    h.sync(manifest.sources(dir.path())).await;
    let doc = get(&h, "/api/openapi.json").await;
    let mut lists = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        if path.contains('{') || op.get("security").is_some() {
            continue;
        }
        let params = op["parameters"].as_array().unwrap();
        let Some(sort) = params.iter().find(|p| p["name"] == "sort") else {
            continue;
        };
        lists += 1;
        let values: Vec<&str> = sort["schema"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            values[0], sort["schema"]["default"],
            "{path}: default first"
        );
        // The review queue's default (proposed links) may be empty; linked ones never are.
        let path = &if path == "/api/facility-links" {
            format!("{path}?status=linked")
        } else {
            path.clone()
        };
        let everything = walk(&h, &with(path, "limit=1000")).await;
        // ERA Level rows are keyed by facility and pollutant, the violations feed's items by
        // kind and id.
        let key = |v: &Value| match (v.get("kind"), v.get("id")) {
            (Some(kind), Some(id)) => format!("{kind}/{id}"),
            (None, Some(id)) => id.to_string(),
            _ => format!("{}/{}", v["facility"]["id"], v["pollutant"]),
        };
        let all: HashSet<String> = everything.iter().map(key).collect();
        assert_eq!(all.len(), everything.len(), "{path}");
        assert!(!all.is_empty(), "{path} lists something");
        let limit = (all.len() / 4).max(2);
        for value in &values {
            let walked = walk(&h, &with(path, &format!("limit={limit}&sort={value}"))).await;
            let got: Vec<String> = walked.iter().map(key).collect();
            assert_eq!(
                got.len(),
                all.len(),
                "{path} sort={value}: each record once"
            );
            assert_eq!(
                got.into_iter().collect::<HashSet<_>>(),
                all,
                "{path} sort={value}"
            );
            let field = value.trim_start_matches('-');
            let item_has = |v: &Value| {
                v.get(field)
                    .or_else(|| v.get("properties").and_then(|p| p.get(field)))
                    .is_some()
            };
            // Text orders follow the database's collation, and a composite id's key is not
            // shown (nor the feed's, whose regulatory items follow every event): those are
            // checked for completeness only.
            let comparable = !matches!(field, "name" | "violationType")
                && (field != "id" || (walked[0]["id"].is_i64() && walked[0].get("kind").is_none()));
            if comparable && walked.iter().all(item_has) {
                let pointer = if walked[0].get(field).is_some() {
                    format!("/{field}")
                } else {
                    format!("/properties/{field}")
                };
                assert_ordered(
                    &walked,
                    &pointer,
                    value.starts_with('-'),
                    &format!("{path} {value}"),
                );
            }
        }
        // A cursor belongs to its sort.
        if values.len() > 1 {
            let first = get(&h, &with(path, &format!("limit=1&sort={}", values[0]))).await;
            let cursor = first["page"]["nextCursor"].as_str().unwrap();
            let (function, _) = route_of(path);
            let (status, body, _) = h
                .get(
                    function.name,
                    &with(path, &format!("limit=1&sort={}&cursor={cursor}", values[1])),
                )
                .await;
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(body["error"]["parameter"], "cursor");
        }
        let (function, _) = route_of(path);
        let (status, body, _) = h.get(function.name, &with(path, "sort=-nonsense")).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["parameter"], "sort");
    }
    assert!(lists >= 9, "{lists} lists take a sort");

    // One facility's timeline (a path with an id): the facility with the most entries, walked
    // newest first and oldest first.
    let busiest = get(&h, "/api/facilities?sort=-inspections&limit=1").await;
    let id = &busiest["data"][0]["id"];
    let path = format!("/api/facilities/{id}/timeline");
    let everything = walk(&h, &with(&path, "limit=1000")).await;
    let entry = |v: &Value| format!("{}/{}", v["kind"], v["id"]);
    let all: HashSet<String> = everything.iter().map(entry).collect();
    assert_eq!(all.len(), everything.len());
    assert!(all.len() >= 4, "{path}: {} entries", all.len());
    let limit = (all.len() / 3).max(1);
    for value in ["-date", "date"] {
        let walked = walk(&h, &with(&path, &format!("limit={limit}&sort={value}"))).await;
        assert_eq!(walked.len(), all.len(), "{path} sort={value}");
        assert_eq!(walked.iter().map(entry).collect::<HashSet<_>>(), all);
        assert_ordered(
            &walked,
            "/date",
            value == "-date",
            &format!("{path} {value}"),
        );
    }
    let first = get(&h, &with(&path, &format!("limit={limit}"))).await;
    let cursor = first["page"]["nextCursor"].as_str().unwrap();
    let (status, body, _) = h
        .get(
            "api-facility-timeline",
            &with(&path, &format!("sort=date&cursor={cursor}")),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["parameter"]),
        (400, &json!("cursor"))
    );
}

/// `path` with the query `more` added.
fn with(path: &str, more: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{more}")
}

/// The function and route serving `path` (a path, possibly with a query).
fn route_of(path: &str) -> (&'static stormwater::api::routes::Function, &'static str) {
    stormwater::api::routes::resolve("GET", path.split('?').next().unwrap())
        .unwrap_or_else(|| panic!("no route for {path}"))
}
