//! Every query of docs/VIOLATION_QUERY_PATTERNS.md runs on data synced through the pipeline, and
//! the ones a user reads figures from return what the engine computed. Also: duplicate candidates
//! against SMARTS regulatory violations, and the SQL severity bands agree with the Rust ones.

mod support;

use serde_json::Value;
use std::collections::HashMap;
use stormwater::sync::manifest::Source;
use stormwater::violations::patterns;
use support::{file_url, fixture, harness};

fn source(dataset: &str, path: &str) -> Source {
    Source {
        dataset: dataset.into(),
        url: file_url(&fixture(path)),
        scope: None,
    }
}

/// The constructed facilities and monitoring cases (later file), plus `extra`.
fn cases_and(extra: Source) -> Vec<Source> {
    vec![
        source(
            "smarts_industrial_facilities",
            "violations/industrial_facilities.txt",
        ),
        source(
            "smarts_industrial_monitoring",
            "violations/industrial_cases_later.txt",
        ),
        extra,
    ]
}

/// Parameter overrides, and how many rows the query must at least return.
type Expectation = (Vec<(&'static str, String)>, usize);

#[tokio::test]
async fn every_documented_query_runs_and_returns_the_engine_figures() {
    let h = harness("violation-queries", None).await;
    h.sync(cases_and(source(
        "smarts_violations",
        "violations/smarts_violations.csv",
    )))
    .await;
    let facility = |app: &str| {
        format!(
            "select facility_id from facility_link where source = 'smarts_industrial' and source_key = '{app}|4 19I9{}'",
            &app[1..]
        )
    };
    let gravel = h.scalar_i64(&facility("900004")).await;
    let copper_site = h.scalar_i64(&facility("900012")).await;
    let tss_annual = h
        .scalar_i64(&format!(
            "select id from violation_event where facility_id = {gravel} and pollutant_key = 'tss' and benchmark_type = 'NAL_ANNUAL'"
        ))
        .await;

    // Duplicate candidates: the SMARTS 'Effluent' violation naming TSS five days after the last
    // TSS sample matches both TSS events; the late annual report matches nothing.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_duplicate where facility_id = {gravel} and score = 0.9::real"
        ))
        .await,
        2
    );
    assert_eq!(
        h.scalar_i64("select count(*) from violation_duplicate")
            .await,
        2
    );

    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/VIOLATION_QUERY_PATTERNS.md"),
    )
    .expect("doc");
    let all = patterns::parse(&doc).expect("parses");
    let defaults: HashMap<&str, String> = [
        ("date_from", "2000-01-01".to_owned()),
        ("date_to", "2100-01-01".to_owned()),
        ("year_from", "2000".to_owned()),
        ("year_to", "2100".to_owned()),
        ("facility_id", gravel.to_string()),
        ("pollutant", "tss".to_owned()),
        ("region", "4".to_owned()),
        ("event_id", tss_annual.to_string()),
        ("reporting_year", "2023".to_owned()),
        ("from_status", "open".to_owned()),
        ("to_status", "under_review".to_owned()),
        ("actor", "key:test".to_owned()),
        ("notes", "from the query patterns test".to_owned()),
    ]
    .into_iter()
    .collect();
    // (pattern, overrides, rows it must return)
    let expectations: HashMap<&str, Expectation> = [
        ("dashboard_by_facility", (vec![], 1)),
        ("dashboard_by_pollutant", (vec![], 1)),
        ("dashboard_by_month", (vec![], 1)),
        ("dashboard_by_status", (vec![], 1)),
        ("facility_pollutants", (vec![], 1)),
        ("facility_pollutant_years", (vec![], 2)),
        ("event_samples_with_source_rows", (vec![], 2)),
        ("annual_average_recomputed", (vec![], 1)),
        (
            "critical_for_facility_in_year",
            (vec![("facility_id", copper_site.to_string())], 1),
        ),
        (
            "level_2_in_region",
            (vec![("pollutant", "aluminum".to_owned())], 1),
        ),
        (
            "nd_policy_sensitive_years",
            (vec![("pollutant", "zinc".to_owned())], 1),
        ),
        ("possible_duplicates_for_facility", (vec![], 2)),
        ("last_run_exclusions", (vec![], 1)),
        ("status_change", (vec![], 1)),
        ("review_history_for_facility", (vec![], 1)),
    ]
    .into_iter()
    .collect();
    let mut ran = 0;
    for p in &all {
        let (overrides, min_rows) = expectations
            .get(p.name.as_str())
            .unwrap_or_else(|| panic!("{}: the test has no expectation for it", p.name));
        let mut values = defaults.clone();
        for (k, v) in overrides {
            values.insert(k, v.clone());
        }
        let rows = patterns::run(h.pool(), p, &values)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            rows >= *min_rows,
            "{}: {rows} rows, expected at least {min_rows}",
            p.name
        );
        ran += 1;
    }
    assert_eq!(ran, expectations.len(), "every expectation has its query");

    // The figures: the hand check of the annual average equals the stored one.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_event e
             where e.id = {tss_annual} and e.value = (select avg(case when s.non_detect then 0 else s.measured_value end)
                                                      from violation_sample s where s.event_id = e.id)"
        ))
        .await,
        1
    );
    // The documented status change did what the API does: open -> under_review, audited.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_event where id = {tss_annual} and status = 'under_review'"
        ))
        .await,
        1
    );
    // Running it again is refused (under_review is no longer 'open'): no second audit row.
    let status_change = all
        .iter()
        .find(|p| p.name == "status_change")
        .expect("pattern");
    assert_eq!(
        patterns::run(h.pool(), status_change, &defaults)
            .await
            .expect("runs"),
        0
    );
}

#[tokio::test]
async fn sql_severity_bands_match_the_rust_ones() {
    let h = harness("violation-severity", None).await;
    for ratio in [1.0001, 1.5, 2.0, 2.0001, 4.99, 5.0, 5.01, 10.0, 10.01, 1e6] {
        let sql: Option<String> =
            sqlx::query_scalar("select violation_severity($1::float8::numeric)")
                .bind(ratio)
                .fetch_one(h.pool())
                .await
                .expect("query");
        assert_eq!(
            sql.as_deref(),
            stormwater::violations::severity(ratio),
            "ratio {ratio}"
        );
    }
}

#[tokio::test]
async fn violation_list_filters_pages_and_exports_csv() {
    let h = harness("violation-list", None).await;
    h.sync(cases_and(source("esmr", "violations/esmr_cases.csv")))
        .await;
    let count = |filter: &str| {
        format!(
            "select count(*) from violation_event e join facility f on f.id = e.facility_id
             where e.retracted_at is null and {filter}"
        )
    };
    let all = h.scalar_i64(&count("true")).await;
    let esmr = h.scalar_i64(&count("e.source = 'esmr'")).await;
    assert!(all > esmr && esmr > 0);
    for (query, filter) in [
        ("", "true"),
        ("source=esmr", "e.source = 'esmr'"),
        ("source=smarts", "e.source <> 'esmr'"),
        (
            "type=NAL_ANNUAL&region=4",
            "e.benchmark_type = 'NAL_ANNUAL' and f.region = '4'",
        ),
        (
            "severity=critical&screening=false",
            "e.severity = 'critical' and not e.screening",
        ),
        (
            "year=2023&pollutant=copper",
            "e.reporting_year = 2023 and e.pollutant_key = 'copper'",
        ),
        (
            "dateFrom=2024-01-01&dateTo=2024-01-31",
            "e.last_date >= '2024-01-01' and e.first_date <= '2024-01-31'",
        ),
    ] {
        let (status, body, _) = h
            .get(
                "api-violations",
                &format!("/api/violations?limit=1000&{query}"),
            )
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        let expected = h.scalar_i64(&count(filter)).await;
        assert_eq!(body["page"]["total"], expected, "{query}");
        assert_eq!(
            body["data"].as_array().map(Vec::len),
            Some(expected as usize),
            "{query}"
        );
        let (_, stats, _) = h
            .get(
                "api-violations-stats",
                &format!("/api/violations/stats?{query}"),
            )
            .await;
        assert_eq!(stats["data"]["events"], expected, "{query}: {stats}");
        let by_severity: i64 = stats["data"]["bySeverity"]
            .as_object()
            .expect("bySeverity")
            .values()
            .filter_map(Value::as_i64)
            .sum();
        assert_eq!(by_severity, expected, "{query}");
        assert!(stats["meta"]["freshness"].is_object());
    }
    // Paging: every event exactly once, by id with `sort=-id`, and by the newest sample by
    // default.
    for sort in ["-id", "-lastDate"] {
        let mut seen = Vec::new();
        let mut dates = Vec::new();
        let mut path = format!("/api/violations?limit=3&sort={sort}");
        loop {
            let (status, body, _) = h.get("api-violations", &path).await;
            assert_eq!(status, 200, "{body}");
            for v in body["data"].as_array().expect("data") {
                seen.push(v["id"].as_i64().expect("id"));
                dates.push(v["lastDate"].as_str().map(str::to_owned));
            }
            match body["page"]["nextCursor"].as_str() {
                Some(c) => path = format!("/api/violations?limit=3&sort={sort}&cursor={c}"),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort_unstable_by(|a, b| b.cmp(a));
        unique.dedup();
        assert_eq!(unique.len() as i64, all, "{sort}: each once");
        if sort == "-id" {
            assert_eq!(seen, unique, "descending id order");
        } else {
            assert!(
                dates.windows(2).all(|w| match (&w[0], &w[1]) {
                    (Some(a), Some(b)) => a >= b,
                    (None, Some(_)) => false,
                    _ => true,
                }),
                "newest sample first, undated last: {dates:?}"
            );
        }
    }
    let (_, first, _) = h.get("api-violations", "/api/violations?limit=1").await;
    assert_eq!(first["page"]["sort"], "-lastDate", "the default");
    // Bad input: a 400 naming the parameter.
    for (query, parameter) in [
        ("dateFrom=2024-13-01", "dateFrom"),
        ("dateFrom=2024-02-01&dateTo=2024-01-01", "dateTo"),
        ("severity=extreme", "severity"),
        ("source=both", "source"),
        ("limit=5000", "limit"),
        ("year=99", "year"),
        ("screening=maybe", "screening"),
        ("format=xml", "format"),
    ] {
        let (status, body, _) = h
            .get("api-violations", &format!("/api/violations?{query}"))
            .await;
        assert_eq!(
            (status, body["error"]["parameter"].as_str()),
            (400, Some(parameter)),
            "{query}"
        );
    }
    // CSV: a header row and one row per event.
    let req = lambda_http::http::Request::builder()
        .uri("https://api.test/api/violations?format=csv&limit=1000")
        .body(lambda_http::Body::Empty)
        .expect("request");
    use lambda_http::RequestExt;
    let req = req.with_query_string_parameters(HashMap::from([
        ("format".to_owned(), vec!["csv".to_owned()]),
        ("limit".to_owned(), vec!["1000".to_owned()]),
    ]));
    let resp = stormwater::api::routes::function("api-violations")
        .unwrap()
        .handle(&h.api, req)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    let lambda_http::Body::Text(text) = resp.body() else {
        panic!("CSV body");
    };
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("header").clone();
    assert_eq!((header.get(0), header.get(1)), (Some("kind"), Some("id")));
    assert_eq!(reader.records().count() as i64, all);
}
